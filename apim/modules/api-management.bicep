// API Management in front of the catalog function app: the instance, the
// function key in Key Vault, the named values the policies read, the backend
// entity, the catalog API imported from the guest's own OpenAPI document, its
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
  // Reads the function key from Key Vault.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    publisherEmail: publisherEmail
    publisherName: publisherName
  }
}

// The function key lives in Key Vault, not in the deployment or in APIM's
// configuration: the named value below refers to it, APIM reads it with its
// managed identity, and a new value is picked up within four hours because
// the reference carries no version.
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

resource functionKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'catalog-function-key'
  properties: {
    value: listKeys('${functionApp.id}/host/default', '2023-12-01').functionKeys[functionHostKeyName]
    contentType: 'host key ${functionHostKeyName} of ${functionAppName}, sent by API Management as x-functions-key'
  }
}

// Key Vault Secrets User, on this one secret only.
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

resource apimReadsFunctionKey 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(functionKeySecret.id, apim.id, keyVaultSecretsUserRoleId)
  scope: functionKeySecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: apim.identity.principalId
    principalType: 'ServicePrincipal'
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

resource functionKeyValue 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'catalog-function-key'
  properties: {
    displayName: 'catalog-function-key'
    secret: true
    keyVault: {
      // Unversioned: secretUri names the secret, not one version of it.
      secretIdentifier: functionKeySecret.properties.secretUri
    }
  }
  // APIM fetches the secret when the named value is created.
  dependsOn: [
    apimReadsFunctionKey
  ]
}

// The backend entity: set-backend-service backend-id="catalog-functions".
//
// Its URL is the site root, without /api: the operations imported from
// guest/openapi.json already carry the Functions route prefix
// (/api/catalog/{item_id}), and APIM appends the operation's path to the
// backend URL, so /api/catalog/42 is what reaches the function app.
//
// The alternative to a function key: authLevel anonymous in every
// function.json, App Service authentication (EasyAuth) on the site requiring
// a token for an app registration, no credentials here, and in the API policy
// <authentication-managed-identity resource="<app id URI>" /> after the
// Authorization header is removed. No shared secret then, at the cost of an
// app registration and EasyAuth configuration. See apim/README.md.
resource backend 'Microsoft.ApiManagement/service/backends@2024-05-01' = {
  parent: apim
  name: 'catalog-functions'
  properties: {
    description: 'Catalog function app (wasm-handler custom handler)'
    protocol: 'http'
    url: 'https://${functionApp.properties.defaultHostName}'
    resourceId: uri(environment().resourceManager, functionApp.id)
    credentials: {
      header: {
        'x-functions-key': [
          '{{catalog-function-key}}'
        ]
      }
    }
    tls: {
      validateCertificateChain: true
      validateCertificateName: true
    }
    // Five 5xx answers or failed connections within a minute open the
    // breaker for a minute (or as long as the backend's Retry-After says:
    // wasm-handler's 503 at capacity carries one), and callers get 503 at
    // once instead of waiting on a failing app
    // (learn.microsoft.com/azure/api-management/backends#circuit-breaker).
    circuitBreaker: {
      rules: [
        {
          name: 'catalog-functions-failing'
          failureCondition: {
            count: 5
            interval: 'PT1M'
            statusCodeRanges: [
              {
                min: 500
                max: 599
              }
            ]
            errorReasons: [
              'BackendConnectionFailure'
              'Timeout'
            ]
          }
          tripDuration: 'PT1M'
          acceptRetryAfter: true
        }
      ]
    }
  }
  dependsOn: [
    functionKeyValue
  ]
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
    backend
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
