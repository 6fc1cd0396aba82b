// API Management in front of the catalog function app: the instance, the
// Key Vault for function keys, the named values the policies read, the
// backend pool of the function apps (members in function-backend.bicep),
// the catalog API imported from the guest's own OpenAPI document, its
// policies, and Application Insights diagnostics with W3C correlation.
//
// Everything the gateway enforces is in ../policies/*.xml; this file only
// wires it up. tests/apim checks that the two agree (backend id, named values,
// the operation the cache policy is attached to, the OpenAPI file).

@description('Azure region.')
param location string

@description('Name of the API Management instance.')
param apimName string

// Not Consumption: it has no built-in cache (cache-lookup would need an
// external Redis) and does not run rate-limit-by-key.
@description('API Management tier.')
@allowed([
  'Developer'
  'Basic'
  'Standard'
  'Premium'
  'BasicV2'
  'StandardV2'
])
param skuName string

@description('Publisher e-mail, required by API Management.')
param publisherEmail string

@description('Publisher name, required by API Management.')
param publisherName string

@description('Name of the function app the API forwards to.')
param functionAppName string

@description('Name of the function app host key API Management sends as x-functions-key.')
param functionHostKeyName string

@description('A second function app (another region) in the backend pool, or empty for one app.')
param secondaryFunctionAppName string = ''

@description('Name of the second app\'s host key for API Management.')
param secondaryFunctionHostKeyName string = ''

@description('Pool priority of the second app: 1 shares traffic with the first by weight, 2 takes it only when the first one\'s circuit breaker is open.')
@minValue(1)
@maxValue(100)
param secondaryPriority int = 1

@description('Pool weight of the first app among apps of its priority.')
@minValue(1)
@maxValue(100)
param primaryWeight int = 50

@description('Pool weight of the second app among apps of its priority.')
@minValue(1)
@maxValue(100)
param secondaryWeight int = 50

@description('How API Management authenticates to the function apps: functionKey (a host key from Key Vault) or managedIdentity (its own Entra token, App Service Authentication on the apps).')
@allowed([
  'functionKey'
  'managedIdentity'
])
param backendAuth string = 'functionKey'

@description('managedIdentity: application (client) id of the app registration that represents the function apps.')
param backendAppId string = ''

@description('Name of the Key Vault that holds that key.')
param keyVaultName string

@description('Name of the Application Insights resource for gateway telemetry.')
param appInsightsName string

@description('URL suffix of the API on the gateway.')
param apiPath string

@description('Expected audience (aud) of callers\' tokens.')
param jwtAudience string

@description('Expected issuer (iss) of callers\' tokens.')
param jwtIssuer string

@description('App role a caller\'s token must carry in its roles claim.')
param requiredRole string

@description('OpenID Connect discovery document of the token issuer.')
param openIdConfigUrl string

var pooled = !empty(secondaryFunctionAppName)

resource functionApp 'Microsoft.Web/sites@2023-12-01' existing = {
  name: functionAppName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource apim 'Microsoft.ApiManagement/service@2024-05-01' = {
  name: apimName
  location: location
  sku: {
    name: skuName
    capacity: 1
  }
  // Reads function keys from Key Vault, or is the identity the function
  // apps accept (backendAuth managedIdentity).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    publisherEmail: publisherEmail
    publisherName: publisherName
  }
}

// Function keys live in Key Vault (modules/function-backend.bicep).
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
  }
}

// Named values: policies refer to them by displayName in double braces; name and
// displayName are kept equal so that either can be searched for.
resource jwtAudienceValue 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'catalog-jwt-audience'
  properties: {
    displayName: 'catalog-jwt-audience'
    value: jwtAudience
  }
}

resource jwtIssuerValue 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'catalog-jwt-issuer'
  properties: {
    displayName: 'catalog-jwt-issuer'
    value: jwtIssuer
  }
}

resource requiredRoleValue 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'catalog-required-role'
  properties: {
    displayName: 'catalog-required-role'
    value: requiredRole
  }
}

resource openIdConfigValue 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'catalog-openid-config-url'
  properties: {
    displayName: 'catalog-openid-config-url'
    value: openIdConfigUrl
  }
}

// managedIdentity: what the API policy's choose branches on, and the
// audience of the token APIM's identity gets for the function apps.
resource backendAuthValue 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'catalog-backend-auth'
  properties: {
    displayName: 'catalog-backend-auth'
    value: backendAuth
  }
}

resource backendAppIdValue 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'catalog-backend-app-id'
  properties: {
    displayName: 'catalog-backend-app-id'
    // A named value is never empty; with function keys nothing reads it.
    value: empty(backendAppId) ? 'none' : backendAppId
  }
}

// The function apps, each a single backend with its own circuit breaker and
// credentials (modules/function-backend.bicep).
module primaryBackend 'function-backend.bicep' = {
  name: 'backend-primary'
  params: {
    apimName: apim.name
    vaultName: vault.name
    functionAppName: functionAppName
    functionHostKeyName: functionHostKeyName
    backendName: 'catalog-functions-primary'
    functionKeyName: 'catalog-function-key'
    backendAuth: backendAuth
    backendAppId: backendAppId
  }
}

module secondaryBackend 'function-backend.bicep' = if (pooled) {
  name: 'backend-secondary'
  params: {
    apimName: apim.name
    vaultName: vault.name
    functionAppName: secondaryFunctionAppName
    functionHostKeyName: secondaryFunctionHostKeyName
    backendName: 'catalog-functions-secondary'
    functionKeyName: 'catalog-function-key-secondary'
    backendAuth: backendAuth
    backendAppId: backendAppId
  }
}

var primaryMember = {
  id: primaryBackend.outputs.id
  priority: 1
  weight: primaryWeight
}
var secondaryMember = {
  id: pooled ? secondaryBackend.outputs.id : ''
  priority: secondaryPriority
  weight: secondaryWeight
}

// The backend entity the policy names: set-backend-service
// backend-id="catalog-functions". A load-balanced pool of the function apps
// (learn.microsoft.com/azure/api-management/backends#load-balanced-pool):
// APIM sends each request to a member of the best priority (1 is best) whose
// circuit breaker is closed, spread by weight among equals, so a second
// region takes traffic by weight (same priority) or only when the first
// trips (secondaryPriority 2). With one app the pool has one member, and the
// policy, the breaker and the error envelope work the same.
resource backendPool 'Microsoft.ApiManagement/service/backends@2024-05-01' = {
  parent: apim
  name: 'catalog-functions'
  properties: {
    description: 'Catalog function apps (wasm-handler custom handler), one per region'
    type: 'Pool'
    pool: {
      services: pooled ? [primaryMember, secondaryMember] : [primaryMember]
    }
  }
}

// The API and its operations, imported from the OpenAPI 3.0.3 rendition of
// the document the guest serves at /api/openapi.json (3.1): APIM imports 3.1
// only with restrictions the served document runs into (see
// tests/apim/openapi.rs). The rendition is generated, never edited by hand.
resource catalogApi 'Microsoft.ApiManagement/service/apis@2024-05-01' = {
  parent: apim
  name: 'catalog'
  properties: {
    displayName: 'Catalog API'
    path: apiPath
    protocols: [
      'https'
    ]
    subscriptionRequired: true
    subscriptionKeyParameterNames: {
      header: 'Ocp-Apim-Subscription-Key'
      query: 'subscription-key'
    }
    format: 'openapi+json'
    value: loadTextContent('../openapi-3.0.json')
    // The policy routes by backend-id; this is the fallback it replaces.
    serviceUrl: 'https://${functionApp.properties.defaultHostName}'
  }
}

// The service-scope policy: the error envelope for every request the gateway
// takes, in an API or not (policies/global.xml).
resource servicePolicy 'Microsoft.ApiManagement/service/policies@2024-05-01' = {
  parent: apim
  name: 'policy'
  properties: {
    format: 'xml'
    value: loadTextContent('../policies/global.xml')
  }
}

// The product callers subscribe to: its subscriptions are scoped to it, so
// a key opens this API only, and the rate limit (keyed on the subscription
// in catalog-api.xml) counts per subscriber.
resource product 'Microsoft.ApiManagement/service/products@2024-05-01' = {
  parent: apim
  name: 'catalog'
  properties: {
    displayName: 'Catalog'
    description: 'The catalog API, with a key per subscriber.'
    subscriptionRequired: true
    approvalRequired: false
    state: 'published'
  }
}

resource productApi 'Microsoft.ApiManagement/service/products/apis@2024-05-01' = {
  parent: product
  name: catalogApi.name
}

// A first subscription for the first client; more are made per client.
resource clientSubscription 'Microsoft.ApiManagement/service/subscriptions@2024-05-01' = {
  parent: apim
  name: 'catalog-first-client'
  properties: {
    displayName: 'Catalog: first client'
    scope: product.id
    state: 'active'
  }
}

// Policies are deployed as "xml": the files are well-formed XML with their
// expressions escaped, which is what that format means ("rawxml" is the
// unescaped form).
resource catalogApiPolicy 'Microsoft.ApiManagement/service/apis/policies@2024-05-01' = {
  parent: catalogApi
  name: 'policy'
  properties: {
    format: 'xml'
    value: loadTextContent('../policies/catalog-api.xml')
  }
  // APIM checks named values and backends when a policy is saved.
  dependsOn: [
    backendPool
    backendAuthValue
    backendAppIdValue
    jwtAudienceValue
    jwtIssuerValue
    requiredRoleValue
    openIdConfigValue
  ]
}

// The import names each operation after its operationId, lower-cased
// (getCatalogItem -> getcatalogitem).
resource getCatalogItem 'Microsoft.ApiManagement/service/apis/operations@2024-05-01' existing = {
  parent: catalogApi
  name: 'getcatalogitem'
}

resource getCatalogItemPolicy 'Microsoft.ApiManagement/service/apis/operations/policies@2024-05-01' = {
  parent: getCatalogItem
  name: 'policy'
  properties: {
    format: 'xml'
    value: loadTextContent('../policies/get-catalog-item.xml')
  }
  // The operation exists once the import is done.
  dependsOn: [
    catalogApi
  ]
}

resource appInsightsLogger 'Microsoft.ApiManagement/service/loggers@2024-05-01' = {
  parent: apim
  name: 'app-insights'
  properties: {
    loggerType: 'applicationInsights'
    resourceId: appInsights.id
    // The connection string, not the instrumentation key alone, which
    // Application Insights no longer takes new features for
    // (learn.microsoft.com/azure/azure-monitor/app/migrate-from-instrumentation-keys-to-connection-strings).
    credentials: {
      connectionString: appInsights.properties.ConnectionString
    }
  }
}

// W3C correlation: APIM sends traceparent to the backend, so the gateway's
// request, its backend dependency and the function's request share one
// operation_Id. x-correlation-id is logged on both sides of the gateway, which
// ties that operation_Id to the id in wasm-handler's log line.
resource catalogApiDiagnostics 'Microsoft.ApiManagement/service/apis/diagnostics@2024-05-01' = {
  parent: catalogApi
  name: 'applicationinsights'
  properties: {
    loggerId: appInsightsLogger.id
    httpCorrelationProtocol: 'W3C'
    alwaysLog: 'allErrors'
    verbosity: 'information'
    logClientIp: true
    sampling: {
      samplingType: 'fixed'
      percentage: 100
    }
    frontend: {
      request: {
        headers: [
          'x-correlation-id'
        ]
      }
      response: {
        headers: [
          'x-correlation-id'
          'x-apim-cache'
        ]
      }
    }
    backend: {
      request: {
        headers: [
          'x-correlation-id'
        ]
      }
    }
  }
}

output gatewayUrl string = '${apim.properties.gatewayUrl}/${apiPath}'
output apimName string = apim.name
