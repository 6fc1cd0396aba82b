// The Linux function app that runs wasm-handler as a custom handler (runtime
// `custom`; functionapp/host.json names the executable), on Flex Consumption
// or Linux Consumption, its storage account, and the host key API Management
// sends.
//
// The code is not deployed here: deploy dist/functionapp.zip (scripts/package)
// with `az functionapp deployment source config-zip` (see apim/README.md).

@description('Azure region.')
param location string

@description('Name of the function app (also its host name: <name>.azurewebsites.net).')
param functionAppName string

@description('Name of the storage account (3 to 24 lower-case letters and digits).')
param storageAccountName string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Name of the host key created for API Management (the portal import names it apim-<APIM name>).')
param apimHostKeyName string

@description('FlexConsumption (the default) or Consumption (Linux Consumption, retiring in September 2028).')
@allowed([
  'FlexConsumption'
  'Consumption'
])
param hostingPlan string = 'FlexConsumption'

@description('functionKey: create the host key API Management sends; managedIdentity: App Service Authentication instead (modules/function-backend.bicep), no key.')
@allowed([
  'functionKey'
  'managedIdentity'
])
param backendAuth string = 'functionKey'

@description('Flex Consumption: the most instances the app scales out to.')
param maximumInstanceCount int = 100

@description('Flex Consumption: memory of one instance, in MB (512, 2048 or 4096).')
param instanceMemoryMB int = 2048

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
  }
}

var flex = hostingPlan == 'FlexConsumption'
// Flex Consumption deploys the app package into this container of the storage account.
var deploymentContainerName = 'app-package'
var flexSku = {
  name: 'FC1'
  tier: 'FlexConsumption'
}
var consumptionSku = {
  name: 'Y1'
  tier: 'Dynamic'
}

// Flex Consumption (FC1) by default: it runs custom handlers (the migration
// guide's stack table lists `custom`), and Linux Consumption (Y1) takes no
// new features and retires on 30 September 2028
// (learn.microsoft.com/azure/azure-functions/migration/migrate-plan-consumption-to-flex).
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${functionAppName}-plan'
  location: location
  kind: flex ? 'functionapp' : 'linux'
  sku: flex ? flexSku : consumptionSku
  properties: {
    reserved: true
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (flex) {
  name: '${storage.name}/default/${deploymentContainerName}'
}

var commonSettings = [
  {
    name: 'AzureWebJobsStorage'
    value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsightsConnectionString
  }
]
// On Linux Consumption the runtime is chosen with app settings: the custom
// handler runtime, whose host launches the executable named in host.json.
// Flex Consumption refuses these two and takes functionAppConfig.runtime.
var consumptionSettings = [
  {
    name: 'FUNCTIONS_EXTENSION_VERSION'
    value: '~4'
  }
  {
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'custom'
  }
]

// Where Flex Consumption finds the package, how far it scales, and the
// runtime: `custom`, the custom handler.
var flexAppConfig = {
  deployment: {
    storage: {
      type: 'blobContainer'
      value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
      authentication: {
        type: 'SystemAssignedIdentity'
      }
    }
  }
  scaleAndConcurrency: {
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  runtime: {
    name: 'custom'
    version: '1.0'
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    functionAppConfig: flex ? flexAppConfig : null
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: flex ? commonSettings : concat(commonSettings, consumptionSettings)
    }
  }
}

// Flex Consumption reads the package from the deployment container with the
// site's identity: Storage Blob Data Owner on the account.
resource deploymentAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (flex) {
  name: guid(storage.id, site.id, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
    )
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// A host key of its own for API Management, so that it can be rotated or
// revoked without touching any other caller's key. The Functions runtime
// generates its value.
resource apimHostKey 'Microsoft.Web/sites/host/functionKeys@2023-12-01' = if (backendAuth == 'functionKey') {
  name: '${site.name}/default/${apimHostKeyName}'
  properties: {
    name: apimHostKeyName
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output apimHostKeyName string = apimHostKeyName
