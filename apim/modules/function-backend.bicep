// One function app as a member of the backend pool the API reaches it by
// (set-backend-service backend-id="catalog-functions", modules/api-management.bicep):
// a single backend entity with its own circuit breaker, and the app's
// credentials, by backendAuth:
//
// - functionKey: the app's host key for APIM, copied into Key Vault and sent
//   as x-functions-key from a Key Vault-backed named value;
// - managedIdentity: no secret at all. App Service Authentication on the app
//   requires a Microsoft Entra token for backendAppId from APIM's own
//   identity, which the API policy gets with authentication-managed-identity.

@description('Name of the API Management instance.')
param apimName string

@description('Name of the Key Vault that holds function keys.')
param vaultName string

@description('Name of the function app.')
param functionAppName string

@description('Name of the function app host key API Management sends as x-functions-key.')
param functionHostKeyName string

@description('Name of the backend entity, a member of the pool.')
param backendName string

@description('Name of the Key Vault secret and of the named value that hold the key.')
param functionKeyName string

@description('functionKey or managedIdentity (see above).')
@allowed([
  'functionKey'
  'managedIdentity'
])
param backendAuth string

@description('managedIdentity: application (client) id of the app registration App Service Authentication accepts tokens for.')
param backendAppId string

var useFunctionKey = backendAuth == 'functionKey'

resource apim 'Microsoft.ApiManagement/service@2024-05-01' existing = {
  name: apimName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource functionApp 'Microsoft.Web/sites@2023-12-01' existing = {
  name: functionAppName
}

// The key lives in Key Vault, not in the deployment or in APIM's
// configuration: the named value refers to it, APIM reads it with its
// managed identity, and a new value is picked up within four hours because
// the reference carries no version. listKeys needs the app's Functions
// runtime to answer (apim/README.md, "A first deployment").
resource functionKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (useFunctionKey) {
  parent: vault
  name: functionKeyName
  properties: {
    // Guarded as well as the resource: ARM may evaluate a list function of a
    // resource whose condition is false, and with managedIdentity the key
    // does not exist (learn.microsoft.com/azure/azure-resource-manager/bicep/conditional-resource-deployment).
    value: useFunctionKey ? listKeys('${functionApp.id}/host/default', '2023-12-01').functionKeys[functionHostKeyName] : ''
    contentType: 'host key ${functionHostKeyName} of ${functionAppName}, sent by API Management as x-functions-key'
  }
}

// Key Vault Secrets User, on this one secret only.
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

resource apimReadsFunctionKey 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (useFunctionKey) {
  name: guid(functionKeySecret.id, apim.id, keyVaultSecretsUserRoleId)
  scope: functionKeySecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: apim.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource functionKeyValue 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = if (useFunctionKey) {
  parent: apim
  name: functionKeyName
  properties: {
    displayName: functionKeyName
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

var functionKeyCredentials = {
  header: {
    'x-functions-key': [
      '{{${functionKeyName}}}'
    ]
  }
}

// Its URL is the site root, without /api: the operations imported from
// guest/openapi.json already carry the Functions route prefix
// (/api/catalog/{item_id}), and APIM appends the operation's path to the
// backend URL, so /api/catalog/42 is what reaches the function app.
resource backend 'Microsoft.ApiManagement/service/backends@2024-05-01' = {
  parent: apim
  name: backendName
  properties: {
    description: 'Catalog function app ${functionAppName} (wasm-handler custom handler)'
    type: 'Single'
    protocol: 'http'
    url: 'https://${functionApp.properties.defaultHostName}'
    resourceId: uri(environment().resourceManager, functionApp.id)
    credentials: useFunctionKey ? functionKeyCredentials : {}
    tls: {
      validateCertificateChain: true
      validateCertificateName: true
    }
    // Five 5xx answers within a minute open the breaker for a minute
    // (failed connections and timeouts too, if APIM matches errorReasons
    // against LastError.Reason: the reference documents them as free text,
    // see apim/README.md, Unverified) (or as long as the backend's Retry-After says:
    // wasm-handler's 503 at capacity carries one). While it is open the
    // pool sends this member nothing, and when every member is open callers
    // get 503 at once instead of waiting on a failing app
    // (learn.microsoft.com/azure/api-management/backends#circuit-breaker;
    // one rule per backend is all APIM takes).
    circuitBreaker: {
      rules: [
        {
          name: '${backendName}-failing'
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

// managedIdentity: App Service Authentication answers 401 to any request
// without a valid Entra token for backendAppId, and 403 to one from any
// identity but APIM's (the built-in authorization policy,
// learn.microsoft.com/azure/app-service/configure-authentication-provider-aad#use-a-built-in-authorization-policy).
// The health route stays open for probes. The app registration must ask for
// v2 access tokens (api.requestedAccessTokenVersion: 2 in its manifest):
// then the token APIM's managed identity gets has the v2.0 issuer below and
// the client id as aud (learn.microsoft.com/entra/identity-platform/access-tokens).
// Without it the token is v1 (issuer sts.windows.net), which this issuer
// setting is not documented to accept. Both audience forms are listed, so a
// resource given as api://<id> works too.
resource appServiceAuthentication 'Microsoft.Web/sites/config@2024-04-01' = if (!useFunctionKey) {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/api/catalog/health'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: backendAppId
          openIdIssuer: '${environment().authentication.loginEndpoint}${subscription().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            backendAppId
            'api://${backendAppId}'
          ]
          defaultAuthorizationPolicy: {
            allowedPrincipals: {
              identities: [
                apim.identity.principalId
              ]
            }
          }
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output id string = backend.id
output name string = backend.name
