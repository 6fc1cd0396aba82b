// Example parameters for main.bicep: copy, fill in, and pass with
// --parameters. The token settings here are Microsoft Entra ID's.
using 'main.bicep'

param publisherEmail = 'api-team@example.com'
param publisherName = 'Catalog API team'
// The v2.0 issuer below puts the API app registration's application (client)
// id in aud, never its api:// URI: use that GUID.
param jwtAudience = '11111111-1111-1111-1111-111111111111'
param jwtIssuer = 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0'
param openIdConfigUrl = 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration'
