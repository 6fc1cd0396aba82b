// The Linux function app that runs wasm-handler as a custom handler
// (FUNCTIONS_WORKER_RUNTIME=custom; functionapp/host.json names the
// executable), its storage account, and the host key API Management sends.
//
// The code is not deployed here: publish functionapp/ with
// `func azure functionapp publish <name>` after `scripts/build` (see
// apim/README.md).

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

// Linux Consumption (Y1): the plan the custom handler docs use. It stops
// taking new features and retires in September 2028; Flex Consumption is its
// successor, but no Flex document states custom handler support yet.
resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${functionAppName}-plan'
  location: location
  kind: 'linux'
  sku: {
    name: 'Y1'
    tier: 'Dynamic'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2023-12-01' = {
  name: functionAppName
  location: location
  kind: 'functionapp,linux'
  properties: {
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        {
          name: 'AzureWebJobsStorage'
          value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'
        }
        {
          name: 'FUNCTIONS_EXTENSION_VERSION'
          value: '~4'
        }
        {
          // The custom handler runtime: the Functions host launches the
          // executable named in host.json and forwards requests to it.
          name: 'FUNCTIONS_WORKER_RUNTIME'
          value: 'custom'
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
      ]
    }
  }
}

// A host key of its own for API Management, so that it can be rotated or
// revoked without touching any other caller's key. The Functions runtime
// generates its value.
resource apimHostKey 'Microsoft.Web/sites/host/functionKeys@2023-12-01' = {
  name: '${site.name}/default/${apimHostKeyName}'
  properties: {
    name: apimHostKeyName
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output apimHostKeyName string = apimHostKeyName
