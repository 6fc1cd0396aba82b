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

@description('Region of a second function app, load-balanced with the first behind the one backend id; empty for a single app.')
param secondaryLocation string = ''

@description('Pool priority of the second app: 1 shares traffic by weight, 2 makes it a failover taking traffic only while the first app\'s circuit breaker is open.')
@minValue(1)
@maxValue(100)
param secondaryPriority int = 1

@description('Pool weights of the first and second app among apps of one priority (1 to 100).')
@minValue(1)
@maxValue(100)
param primaryWeight int = 50

@minValue(1)
@maxValue(100)
param secondaryWeight int = 50

@description('How API Management authenticates to the function app: functionKey (a host key in Key Vault, sent as x-functions-key) or managedIdentity (APIM\'s Entra token, checked by App Service Authentication; deploy the package built with --auth-level anonymous).')
@allowed([
  'functionKey'
  'managedIdentity'
])
param backendAuth string = 'functionKey'

@description('managedIdentity: application (client) id of the app registration that stands for the function app; App Service Authentication accepts tokens for it from APIM\'s identity only.')
param backendAppId string = ''

// Globally unique names, stable for one resource group.
var suffix = uniqueString(resourceGroup().id)
var functionAppName = '${baseName}-func-${suffix}'
var apimName = '${baseName}-apim-${suffix}'
var pooled = !empty(secondaryLocation)

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
    backendAuth: backendAuth
  }
}

// The same app in a second region (its own storage and host key), the
// pool's second member.
module secondaryFunctionApp 'modules/function-app.bicep' = if (pooled) {
  name: 'function-app-secondary'
  params: {
    location: secondaryLocation
    functionAppName: '${baseName}-func2-${suffix}'
    storageAccountName: '${baseName}s2${suffix}'
    appInsightsConnectionString: monitoring.outputs.connectionString
    apimHostKeyName: 'apim-${apimName}'
    hostingPlan: hostingPlan
    backendAuth: backendAuth
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
    secondaryFunctionAppName: pooled ? secondaryFunctionApp.outputs.name : ''
    secondaryFunctionHostKeyName: pooled ? secondaryFunctionApp.outputs.apimHostKeyName : ''
    secondaryPriority: secondaryPriority
    primaryWeight: primaryWeight
    secondaryWeight: secondaryWeight
    backendAuth: backendAuth
    backendAppId: backendAppId
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
output secondaryFunctionAppName string = pooled ? secondaryFunctionApp.outputs.name : ''
output apimName string = apiManagement.outputs.apimName
output catalogGatewayUrl string = apiManagement.outputs.gatewayUrl
