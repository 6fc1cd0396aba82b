// Monitoring: one Log Analytics workspace and one workspace-based Application
// Insights resource, shared by the function app and API Management so that
// both sides of a request land in the same place (operation_Id joins them).

@description('Azure region.')
param location string

@description('Name of the Application Insights resource; the workspace gets the same name plus -logs.')
param appInsightsName string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${appInsightsName}-logs'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
  }
}

output appInsightsName string = appInsights.name
output connectionString string = appInsights.properties.ConnectionString
