// The catalog API in Azure, as code: the function app that runs wasm-handler
// and the catalog component, and API Management in front of it, with the
// policies in ./policies. Deploy into a resource group:
//
//   az deployment group create --resource-group <rg> \
//     --template-file apim/main.bicep --parameters apim/example.bicepparam
//
// then publish functionapp/ to the function app this prints (apim/README.md).

targetScope = 'resourceGroup'

@description('Azure region of every resource.')
param location string = resourceGroup().location

@description('Prefix of every resource name: lower-case letters and digits.')
@minLength(3)
@maxLength(9)
param baseName string = 'catalog'

@description('API Management tier (not Consumption: see modules/api-management.bicep).')
param apimSku string = 'Developer'

@description('Publisher e-mail, required by API Management.')
param publisherEmail string

@description('Publisher name, required by API Management.')
param publisherName string

@description('Expected audience (aud) of callers\' tokens. Microsoft Entra ID v2.0 access tokens carry the API app registration\'s application (client) id, a GUID, never its api:// URI.')
param jwtAudience string

@description('Expected issuer (iss) of callers\' tokens, e.g. https://login.microsoftonline.com/<tenant>/v2.0.')
param jwtIssuer string

@description('App role (an application permission of the API\'s app registration) a caller\'s token must carry in its roles claim.')
param requiredRole string = 'Catalog.Read'

@description('OpenID Connect discovery document of the issuer, e.g. https://login.microsoftonline.com/<tenant>/v2.0/.well-known/openid-configuration.')
param openIdConfigUrl string

@description('URL suffix of the API on the gateway: https://<apim>.azure-api.net/<apiPath>/api/catalog/{item_id}.')
param apiPath string = 'catalog'

@description('Hosting plan of the function app: FlexConsumption (the default) or Consumption (Linux Consumption, retiring in September 2028).')
@allowed([
  'FlexConsumption'
  'Consumption'
])
param hostingPlan string = 'FlexConsumption'

// Globally unique names, stable for one resource group.
var suffix = uniqueString(resourceGroup().id)
var functionAppName = '${baseName}-func-${suffix}'
var apimName = '${baseName}-apim-${suffix}'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    appInsightsName: '${baseName}-insights-${suffix}'
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  params: {
    location: location
    functionAppName: functionAppName
    storageAccountName: '${baseName}st${suffix}'
    appInsightsConnectionString: monitoring.outputs.connectionString
    apimHostKeyName: 'apim-${apimName}'
    hostingPlan: hostingPlan
  }
}

module apiManagement 'modules/api-management.bicep' = {
  name: 'api-management'
  params: {
    location: location
    apimName: apimName
    skuName: apimSku
    publisherEmail: publisherEmail
    publisherName: publisherName
    functionAppName: functionApp.outputs.name
    functionHostKeyName: functionApp.outputs.apimHostKeyName
    keyVaultName: '${baseName}kv${suffix}'
    appInsightsName: monitoring.outputs.appInsightsName
    apiPath: apiPath
    jwtAudience: jwtAudience
    jwtIssuer: jwtIssuer
    requiredRole: requiredRole
    openIdConfigUrl: openIdConfigUrl
  }
}

output functionAppName string = functionApp.outputs.name
output functionAppUrl string = 'https://${functionApp.outputs.defaultHostName}'
output apimName string = apiManagement.outputs.apimName
output catalogGatewayUrl string = apiManagement.outputs.gatewayUrl
