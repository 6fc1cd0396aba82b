"""Offline checks of apim/ with real parsers, for what neither APIM nor a
Bicep compiler can check here (both cannot be installed from the registries
this project reaches):

1. the OpenAPI 3.0.3 rendition APIM imports is valid OpenAPI 3.0
   (openapi-spec-validator's 3.0 validator);
2. every C# policy expression (`@(...)` and `@{...}` in an attribute or in
   element text) parses with tree-sitter's C# grammar, and every policy
   element is one of POLICIES, in a section its reference page allows, with
   only the attributes and child elements that page lists (placement is in
   no schema, only in the pages);
3. every Bicep file parses (pycep-parser), and every resource it declares
   has a type and API version listed in RESOURCES, and sets only properties
   PROPERTIES lists for its type, both from the resource reference
   (learn.microsoft.com/azure/templates/<type>/<version>); and every module
   call passes exactly the parameters its module declares, the required ones
   included.

Run by scripts/test: `python apim/checks/check.py` from the repository root,
in the environment `scripts/setup --python-tools` makes. Exits 1 on any
failure, naming it.
"""

import glob
import json
import os
import re
import sys
import xml.etree.ElementTree as ElementTree

import tree_sitter
import tree_sitter_c_sharp
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV30SpecValidator
from pycep import BicepParser

# Resource types and the API versions the Bicep may use, each read in its
# reference page: learn.microsoft.com/azure/templates/<type>/<version>.
RESOURCES = {
    "Microsoft.ApiManagement/service": {"2024-05-01"},
    "Microsoft.ApiManagement/service/apis": {"2024-05-01"},
    "Microsoft.ApiManagement/service/apis/diagnostics": {"2024-05-01"},
    "Microsoft.ApiManagement/service/apis/operations": {"2024-05-01"},
    "Microsoft.ApiManagement/service/apis/operations/policies": {"2024-05-01"},
    "Microsoft.ApiManagement/service/apis/policies": {"2024-05-01"},
    "Microsoft.ApiManagement/service/backends": {"2024-05-01"},
    "Microsoft.ApiManagement/service/loggers": {"2024-05-01"},
    "Microsoft.ApiManagement/service/namedValues": {"2024-05-01"},
    "Microsoft.ApiManagement/service/policies": {"2024-05-01"},
    "Microsoft.ApiManagement/service/products": {"2024-05-01"},
    "Microsoft.ApiManagement/service/products/apis": {"2024-05-01"},
    "Microsoft.ApiManagement/service/subscriptions": {"2024-05-01"},
    "Microsoft.Authorization/roleAssignments": {"2022-04-01"},
    "Microsoft.Insights/components": {"2020-02-02"},
    "Microsoft.KeyVault/vaults": {"2023-07-01"},
    "Microsoft.KeyVault/vaults/secrets": {"2023-07-01"},
    "Microsoft.OperationalInsights/workspaces": {"2023-09-01"},
    "Microsoft.Storage/storageAccounts": {"2023-05-01"},
    "Microsoft.Storage/storageAccounts/blobServices/containers": {"2023-05-01"},
    "Microsoft.Web/serverfarms": {"2024-04-01"},
    "Microsoft.Web/sites": {"2023-12-01", "2024-04-01"},
    "Microsoft.Web/sites/config": {"2024-04-01"},
    "Microsoft.Web/sites/host/functionKeys": {"2023-12-01"},
}

# The properties each type's reference page defines, as paths ("[]" is an
# array's item, "*" any one key of a free-form map), for the types and API
# versions in RESOURCES. A property a Bicep file sets must be here: a
# misspelled or misplaced one (APIM ignores some unknown ones silently) fails.
# `name`, `parent`, `scope` and `dependsOn` are Bicep's own, valid everywhere.
PROPERTIES = {
    "Microsoft.ApiManagement/service": {
        "location", "identity.type", "sku.name", "sku.capacity",
        "properties.publisherEmail", "properties.publisherName",
    },
    "Microsoft.ApiManagement/service/apis": {
        "properties.displayName", "properties.description", "properties.path",
        "properties.protocols[]", "properties.subscriptionRequired",
        "properties.subscriptionKeyParameterNames.header",
        "properties.subscriptionKeyParameterNames.query", "properties.format",
        "properties.value", "properties.serviceUrl",
    },
    "Microsoft.ApiManagement/service/apis/diagnostics": {
        "properties.loggerId", "properties.httpCorrelationProtocol", "properties.alwaysLog",
        "properties.verbosity", "properties.logClientIp", "properties.sampling.samplingType",
        "properties.sampling.percentage", "properties.frontend.request.headers[]",
        "properties.frontend.response.headers[]", "properties.backend.request.headers[]",
        "properties.backend.response.headers[]",
    },
    "Microsoft.ApiManagement/service/apis/operations/policies": {
        "properties.format", "properties.value",
    },
    "Microsoft.ApiManagement/service/apis/policies": {"properties.format", "properties.value"},
    "Microsoft.ApiManagement/service/backends": {
        "properties.description", "properties.type", "properties.protocol", "properties.url",
        "properties.resourceId", "properties.credentials.header.*[]",
        "properties.credentials.query.*[]", "properties.tls.validateCertificateChain",
        "properties.tls.validateCertificateName", "properties.circuitBreaker.rules[].name",
        "properties.circuitBreaker.rules[].failureCondition.count",
        "properties.circuitBreaker.rules[].failureCondition.percentage",
        "properties.circuitBreaker.rules[].failureCondition.interval",
        "properties.circuitBreaker.rules[].failureCondition.statusCodeRanges[].min",
        "properties.circuitBreaker.rules[].failureCondition.statusCodeRanges[].max",
        "properties.circuitBreaker.rules[].failureCondition.errorReasons[]",
        "properties.circuitBreaker.rules[].tripDuration",
        "properties.circuitBreaker.rules[].acceptRetryAfter",
        "properties.pool.services[].id", "properties.pool.services[].priority",
        "properties.pool.services[].weight",
    },
    "Microsoft.ApiManagement/service/loggers": {
        "properties.loggerType", "properties.resourceId", "properties.description",
        "properties.credentials.connectionString", "properties.isBuffered",
    },
    "Microsoft.ApiManagement/service/namedValues": {
        "properties.displayName", "properties.value", "properties.secret",
        "properties.keyVault.secretIdentifier", "properties.keyVault.identityClientId",
    },
    "Microsoft.ApiManagement/service/policies": {"properties.format", "properties.value"},
    "Microsoft.ApiManagement/service/products": {
        "properties.displayName", "properties.description", "properties.subscriptionRequired",
        "properties.approvalRequired", "properties.subscriptionsLimit", "properties.state",
    },
    "Microsoft.ApiManagement/service/products/apis": set(),
    "Microsoft.ApiManagement/service/subscriptions": {
        "properties.displayName", "properties.scope", "properties.state",
    },
    "Microsoft.Authorization/roleAssignments": {
        "properties.roleDefinitionId", "properties.principalId", "properties.principalType",
    },
    "Microsoft.Insights/components": {
        "location", "kind", "properties.Application_Type", "properties.WorkspaceResourceId",
    },
    "Microsoft.KeyVault/vaults": {
        "location", "properties.tenantId", "properties.sku.family", "properties.sku.name",
        "properties.enableRbacAuthorization", "properties.enableSoftDelete",
    },
    "Microsoft.KeyVault/vaults/secrets": {"properties.value", "properties.contentType"},
    "Microsoft.OperationalInsights/workspaces": {
        "location", "properties.sku.name", "properties.retentionInDays",
    },
    "Microsoft.Storage/storageAccounts": {
        "location", "kind", "sku.name", "properties.minimumTlsVersion",
        "properties.supportsHttpsTrafficOnly", "properties.allowBlobPublicAccess",
    },
    "Microsoft.Storage/storageAccounts/blobServices/containers": set(),
    "Microsoft.Web/serverfarms": {"location", "kind", "sku.name", "sku.tier", "properties.reserved"},
    "Microsoft.Web/sites": {
        "location", "kind", "identity.type", "properties.serverFarmId", "properties.reserved",
        "properties.httpsOnly",
        "properties.functionAppConfig.deployment.storage.type",
        "properties.functionAppConfig.deployment.storage.value",
        "properties.functionAppConfig.deployment.storage.authentication.type",
        "properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount",
        "properties.functionAppConfig.scaleAndConcurrency.instanceMemoryMB",
        "properties.functionAppConfig.runtime.name", "properties.functionAppConfig.runtime.version",
        "properties.siteConfig.minTlsVersion", "properties.siteConfig.ftpsState",
        "properties.siteConfig.appSettings[].name", "properties.siteConfig.appSettings[].value",
    },
    # authsettingsV2, the config the name selects.
    "Microsoft.Web/sites/config": {
        "properties.platform.enabled", "properties.globalValidation.requireAuthentication",
        "properties.globalValidation.unauthenticatedClientAction",
        "properties.globalValidation.excludedPaths[]",
        "properties.identityProviders.azureActiveDirectory.enabled",
        "properties.identityProviders.azureActiveDirectory.registration.clientId",
        "properties.identityProviders.azureActiveDirectory.registration.openIdIssuer",
        "properties.identityProviders.azureActiveDirectory.validation.allowedAudiences[]",
        "properties.identityProviders.azureActiveDirectory.validation"
        ".defaultAuthorizationPolicy.allowedPrincipals.identities[]",
        "properties.login.tokenStore.enabled",
    },
    "Microsoft.Web/sites/host/functionKeys": {"properties.name", "properties.value"},
}
BICEP_KEYWORDS = {"name", "parent", "scope", "dependsOn[]"}

# The policy elements the repository uses: the sections each may stand in,
# its attributes and its child elements, from its page in the policy
# reference, learn.microsoft.com/azure/api-management/<page>.
ALL = {"inbound", "backend", "outbound", "on-error"}
POLICIES = {
    "base": (ALL, set(), set(), "api-management-howto-policies"),
    "set-variable": (ALL, {"name", "value"}, set(), "set-variable-policy"),
    "validate-jwt": (
        {"inbound"},
        {"header-name", "query-parameter-name", "token-value", "failed-validation-httpcode",
         "failed-validation-error-message", "require-expiration-time", "require-scheme",
         "require-signed-tokens", "clock-skew", "output-token-variable-name"},
        {"openid-config", "issuer-signing-keys", "decryption-keys", "audiences", "issuers",
         "required-claims"},
        "validate-jwt-policy",
    ),
    "rate-limit-by-key": (
        {"inbound"},
        {"calls", "renewal-period", "counter-key", "increment-condition", "increment-count",
         "retry-after-header-name", "retry-after-variable-name", "remaining-calls-header-name",
         "remaining-calls-variable-name", "total-calls-header-name"},
        set(),
        "rate-limit-by-key-policy",
    ),
    "set-header": (ALL, {"name", "exists-action"}, {"value"}, "set-header-policy"),
    "set-query-parameter": (
        {"inbound", "backend"}, {"name", "exists-action"}, {"value"}, "set-query-parameter-policy"),
    "set-backend-service": (
        {"inbound", "backend"},
        {"base-url", "backend-id", "sf-resolve-condition", "sf-service-instance-name",
         "sf-listener-name"},
        set(),
        "set-backend-service-policy",
    ),
    "rewrite-uri": ({"inbound"}, {"template", "copy-unmatched-params"}, set(), "rewrite-uri-policy"),
    "cache-lookup": (
        {"inbound"},
        {"vary-by-developer", "vary-by-developer-groups", "caching-type",
         "downstream-caching-type", "must-revalidate", "allow-private-response-caching"},
        {"vary-by-header", "vary-by-query-parameter"},
        "cache-lookup-policy",
    ),
    "cache-store": ({"outbound"}, {"duration", "cache-response"}, set(), "cache-store-policy"),
    "choose": (ALL, set(), {"when", "otherwise"}, "choose-policy"),
    "authentication-managed-identity": (
        {"inbound"}, {"resource", "client-id", "output-token-variable-name", "ignore-error"},
        set(), "authentication-managed-identity-policy"),
    "return-response": (
        ALL, {"response-variable-name"}, {"set-status", "set-header", "set-body"},
        "return-response-policy"),
    "set-status": (ALL, {"code", "reason"}, set(), "set-status-policy"),
    "set-body": (
        {"inbound", "outbound", "backend"}, {"template", "xsi-nil", "parse-date"}, set(),
        "set-body-policy"),
    "forward-request": (
        {"backend"},
        {"timeout", "timeout-ms", "continue-timeout", "follow-redirects", "buffer-request-body",
         "buffer-response", "fail-on-error-status-code", "http-version"},
        set(),
        "forward-request-policy",
    ),
}
# Elements that belong to a policy rather than stand in a section; their
# parent's entry says where they may be.
CHILDREN = {
    "openid-config": {"url"}, "audiences": set(), "audience": set(), "issuers": set(),
    "issuer": set(), "required-claims": set(), "claim": {"name", "match", "separator"},
    "value": set(), "when": {"condition"}, "otherwise": set(),
    "vary-by-header": set(), "vary-by-query-parameter": set(),
}
NESTED = {"audiences": {"audience"}, "issuers": {"issuer"}, "required-claims": {"claim"},
          "claim": {"value"}}

failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL {message}", file=sys.stderr)


def check_openapi():
    path = "apim/openapi-3.0.json"
    with open(path, encoding="utf-8") as file:
        document = json.load(file)
    if not str(document.get("openapi", "")).startswith("3.0."):
        fail(f"{path}: openapi is {document.get('openapi')!r}, not 3.0.x")
        return
    try:
        validate(document, cls=OpenAPIV30SpecValidator)
        print(f"ok   {path}: valid OpenAPI {document['openapi']}")
    except Exception as error:  # the validator raises its own error types
        fail(f"{path}: {str(error).splitlines()[0]}")


def expressions(element):
    """Every policy expression of an element and its descendants."""
    for node in element.iter():
        for name, value in node.attrib.items():
            if value.startswith("@"):
                yield f"<{node.tag} {name}>", value
        text = (node.text or "").strip()
        if text.startswith("@"):
            yield f"<{node.tag}> text", text


def as_compilation_unit(expression):
    """A policy expression as C# that a parser takes whole: a single
    expression `@(...)` is returned, a statement block `@{...}` is a body."""
    if expression.startswith("@("):
        return "class Policy { object Expression() { return " + expression[1:] + "; } }"
    if expression.startswith("@{"):
        return "class Policy { object Expression() " + expression[1:] + " }"
    return None


def check_statement(path, section, node):
    """One policy statement in `section`: known, allowed there, with known
    attributes and children (recursively, `choose` branches included)."""
    entry = POLICIES.get(node.tag)
    if entry is None:
        fail(f"{path}: <{node.tag}> in <{section}> is not in the checked policy table")
        return
    sections, attributes, children, page = entry
    if section not in sections:
        fail(f"{path}: <{node.tag}> may not stand in <{section}> ({page})")
    for name in node.attrib:
        if name not in attributes:
            fail(f"{path}: <{node.tag}> has no attribute {name} ({page})")
    for child in node:
        if child.tag not in children:
            fail(f"{path}: <{node.tag}> takes no <{child.tag}> ({page})")
        elif child.tag in ("when", "otherwise"):
            check_child(path, child, page)
            for statement in child:
                check_statement(path, section, statement)
        elif node.tag == "return-response":
            # return-response's own set-status, set-header and set-body.
            check_statement(path, "inbound" if child.tag == "set-body" else section, child)
        else:
            check_child(path, child, page)


def check_child(path, node, page):
    for name in node.attrib:
        if name not in CHILDREN.get(node.tag, set()):
            fail(f"{path}: <{node.tag}> has no attribute {name} ({page})")
    if node.tag in ("when", "otherwise"):
        return
    for child in node:
        if child.tag not in NESTED.get(node.tag, set()):
            fail(f"{path}: <{node.tag}> takes no <{child.tag}> ({page})")
        else:
            check_child(path, child, page)


def check_placement(path, root):
    failed = len(failures)
    for section in root:
        if section.tag not in ALL:
            fail(f"{path}: <{section.tag}> is not a policy section")
            continue
        for statement in section:
            check_statement(path, section.tag, statement)
    if len(failures) == failed:
        print(f"ok   {path}: every element in a section, with the attributes, its page allows")


def check_policies():
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_c_sharp.language()))
    for path in sorted(glob.glob("apim/policies/*.xml")):
        root = ElementTree.parse(path).getroot()
        check_placement(path, root)
        count, failed = 0, len(failures)
        for where, expression in expressions(root):
            source = as_compilation_unit(expression)
            if source is None:
                fail(f"{path} {where}: {expression[:40]!r} is neither @(...) nor @{{...}}")
                continue
            tree = parser.parse(source.encode("utf-8"))
            if tree.root_node.has_error:
                fail(f"{path} {where}: C# does not parse: {expression[:120]!r}")
            count += 1
        if len(failures) == failed:
            print(f"ok   {path}: {count} C# expressions parse")


def declared_resources(parsed):
    for name, resource in parsed.get("resources", {}).items():
        yield name, resource["type"], resource["api_version"]


def property_paths(value, prefix, variables):
    """The property paths a resource body sets. A conditional (`a ? b : c`)
    sets what either branch does; an object variable is looked into; any
    other expression or a literal ends a path."""
    if isinstance(value, str) and isinstance(variables.get(value, {}).get("value"), (dict, list)):
        value = variables[value]["value"]
    if isinstance(value, dict) and ("operator" in value or "function" in value):
        operator = value.get("operator", {})
        if operator.get("type") == "conditional":
            for branch in ("true_value", "false_value"):
                yield from property_paths(operator["operands"][branch], prefix, variables)
        else:
            yield prefix
    elif isinstance(value, dict):
        if not value:
            yield prefix
        for key, item in value.items():
            key = key.strip("'")
            yield from property_paths(item, f"{prefix}.{key}" if prefix else key, variables)
    elif isinstance(value, list):
        if not value:
            yield prefix + "[]"
        for item in value:
            yield from property_paths(item, prefix + "[]", variables)
    else:
        yield prefix


def path_pattern(path):
    return re.compile(re.escape(path).replace(r"\*", r"[^.]+"))


PROPERTY_PATTERNS = {kind: [path_pattern(p) for p in paths] for kind, paths in PROPERTIES.items()}


def known_property(kind, path):
    """In the table, or an object the table has properties under (set whole
    by an expression, or empty)."""
    return (path in BICEP_KEYWORDS
            or any(pattern.fullmatch(path) for pattern in PROPERTY_PATTERNS.get(kind, []))
            or any(known.startswith((path + ".", path + "[]"))
                   for known in PROPERTIES.get(kind, ())))


def body(declaration):
    """A resource's or module's body, inside its `if (...)` when it has one."""
    config = declaration["config"]
    return config["config"] if "condition" in config and "config" in config else config


def check_properties(path, parsed):
    variables = parsed.get("variables", {})
    for name, resource in parsed.get("resources", {}).items():
        if resource["existing"]:
            continue
        for used in property_paths(body(resource), "", variables):
            if not known_property(resource["type"], used):
                fail(f"{path}: resource {name} sets {used}, which {resource['type']}"
                     f"@{resource['api_version']} does not define (PROPERTIES)")


def check_modules(path, parsed, parsed_files):
    """What a Bicep compiler checks of a module call: the file exists, every
    parameter passed is one it declares, and every one without a default
    is passed. `parsed_files` holds every file that parsed, by path."""
    folder = os.path.dirname(path)
    for name, module in parsed.get("modules", {}).items():
        target = os.path.normpath(os.path.join(folder, module["detail"]["path"]))
        if target not in parsed_files:
            fail(f"{path}: module {name} refers to {target}, which is missing or does not parse")
            continue
        declared = parsed_files[target].get("parameters", {})
        passed = set(body(module).get("params", {}))
        for extra in sorted(passed - set(declared)):
            fail(f"{path}: module {name} passes {extra}, which {target} does not declare")
        for missing in sorted(p for p, d in declared.items()
                              if d.get("default") is None and p not in passed):
            fail(f"{path}: module {name} does not pass {missing}, which {target} requires")


def check_bicep():
    parsed_files = {}
    for path in sorted(glob.glob("apim/**/*.bicep", recursive=True)):
        with open(path, encoding="utf-8") as file:
            text = file.read()
        try:
            parsed_files[os.path.normpath(path)] = BicepParser().parse(text=text)
        except Exception as error:  # lark's parse errors
            fail(f"{path}: does not parse: {str(error).splitlines()[0]}")
    for path, parsed in parsed_files.items():
        resources = list(declared_resources(parsed))
        failed = len(failures)
        for name, kind, version in resources:
            if version not in RESOURCES.get(kind, set()):
                fail(f"{path}: resource {name} is {kind}@{version}, not in the table of checked types")
        check_properties(path, parsed)
        check_modules(path, parsed, parsed_files)
        if len(failures) == failed:
            print(f"ok   {path}: parses, {len(resources)} resources of checked types, versions"
                  " and properties")


check_openapi()
check_policies()
check_bicep()
if failures:
    print(f"{len(failures)} apim check(s) failed", file=sys.stderr)
    sys.exit(1)
