//! `<FunctionName>/function.json`: a function's bindings (Microsoft docs: functions-bindings-http-webhook-trigger).

use serde_json::Value;

use crate::json;

/// A function: its folder's name and its bindings, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    /// The function's name: its folder's name.
    pub name: String,
    /// `bindings`, in file order.
    pub bindings: Vec<Binding>,
}

/// One entry of `bindings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// `type`, as written (compare case-insensitively).
    pub kind: String,
    /// `direction`.
    pub direction: Direction,
    /// `name`: the key of its value in `Data` and `Outputs`.
    pub name: String,
    /// `authLevel` (HTTP triggers).
    pub auth_level: Option<String>,
    /// `methods` (HTTP triggers); `None` when absent (all methods).
    pub methods: Option<Vec<String>>,
    /// `route` (HTTP triggers); `None` when absent or empty (the function name).
    pub route: Option<String>,
}

/// A binding's `direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `in`: a trigger or an input.
    In,
    /// `out`: an output.
    Out,
    /// `inout`.
    InOut,
}

impl Binding {
    /// Whether the binding's type is `kind`, in any case.
    pub fn is(&self, kind: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind)
    }
}

impl FunctionConfig {
    /// Reads a parsed `function.json` for the function `name`.
    pub fn from_json(name: &str, root: &Value) -> Result<Self, String> {
        let bindings = json::get(root, "bindings")
            .and_then(Value::as_array)
            .ok_or("function.json has no \"bindings\" array")?;
        let bindings = bindings
            .iter()
            .enumerate()
            .map(|(index, binding)| {
                Binding::from_json(binding).map_err(|e| format!("binding {index}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(FunctionConfig {
            name: name.to_owned(),
            bindings,
        })
    }

    /// Input bindings (the trigger included).
    pub fn inputs(&self) -> impl Iterator<Item = &Binding> {
        self.bindings
            .iter()
            .filter(|binding| binding.direction != Direction::Out)
    }

    /// Output bindings.
    pub fn outputs(&self) -> impl Iterator<Item = &Binding> {
        self.bindings
            .iter()
            .filter(|binding| binding.direction != Direction::In)
    }

    /// The function's trigger: the input binding whose type ends in `Trigger`.
    pub fn trigger(&self) -> Option<&Binding> {
        self.inputs()
            .find(|binding| binding.kind.to_lowercase().ends_with("trigger"))
    }

    /// The HTTP trigger, when the function has one.
    pub fn http_trigger(&self) -> Option<&Binding> {
        self.trigger().filter(|binding| binding.is("httpTrigger"))
    }

    /// The first `http` output binding (`res`, or `$return`).
    pub fn http_output(&self) -> Option<&Binding> {
        self.outputs().find(|binding| binding.is("http"))
    }

    /// Exactly one input, an `httpTrigger`, and exactly one output, `http`
    /// (`src/WebJobs.Script/Extensions/FunctionMetadataExtensions.cs`, `IsHttpInAndOutFunction`):
    /// the only functions that may be forwarded.
    pub fn is_http_in_and_out(&self) -> bool {
        let inputs: Vec<_> = self.inputs().collect();
        let outputs: Vec<_> = self.outputs().collect();
        matches!(inputs[..], [input] if input.is("httpTrigger"))
            && matches!(outputs[..], [output] if output.is("http"))
    }
}

impl Binding {
    fn from_json(value: &Value) -> Result<Self, String> {
        let text = |name: &str| json::get(value, name).and_then(json::scalar);
        let kind = text("type").ok_or("no \"type\"")?;
        let direction = match text("direction").map(|d| d.to_lowercase()).as_deref() {
            Some("in") => Direction::In,
            Some("out") => Direction::Out,
            Some("inout") => Direction::InOut,
            other => return Err(format!("direction {other:?} is not in, out or inout")),
        };
        let name = text("name").ok_or("no \"name\"")?;
        let methods = json::get(value, "methods")
            .map(|methods| json::string_list(methods).ok_or("\"methods\" must be an array"))
            .transpose()?;
        Ok(Binding {
            kind,
            direction,
            name,
            auth_level: text("authLevel"),
            methods,
            route: text("route").filter(|route| !route.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn function(bindings: Value) -> FunctionConfig {
        FunctionConfig::from_json("f", &json!({ "bindings": bindings })).expect("valid")
    }

    #[test]
    fn reads_the_catalog_function() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../functionapp/catalog-item/function.json"
        ))
        .expect("functionapp/catalog-item/function.json");
        let config = FunctionConfig::from_json("catalog-item", &json::parse(&text).expect("JSON"))
            .expect("valid");
        let trigger = config.http_trigger().expect("an HTTP trigger");
        assert_eq!(trigger.name, "req");
        assert_eq!(trigger.auth_level.as_deref(), Some("function"));
        assert_eq!(trigger.methods, Some(vec!["get".to_owned()]));
        assert_eq!(trigger.route.as_deref(), Some("catalog/{item_id}"));
        assert_eq!(config.http_output().map(|b| b.name.as_str()), Some("res"));
        assert!(config.is_http_in_and_out());
    }

    #[test]
    fn http_in_and_out_needs_exactly_one_of_each() {
        let trigger = json!({"type": "HttpTrigger", "direction": "IN", "name": "req"});
        let http_out = json!({"type": "http", "direction": "out", "name": "$return"});
        let queue_out = json!({"type": "queue", "direction": "out", "name": "q"});
        let blob_in = json!({"type": "blob", "direction": "in", "name": "b"});
        assert!(function(json!([trigger, http_out])).is_http_in_and_out());
        assert!(!function(json!([trigger, http_out, queue_out])).is_http_in_and_out());
        assert!(!function(json!([trigger, blob_in, http_out])).is_http_in_and_out());
        assert!(!function(json!([trigger])).is_http_in_and_out());
        let timer = function(json!([{"type": "timerTrigger", "direction": "in", "name": "t"}]));
        assert!(timer.http_trigger().is_none());
        assert_eq!(
            timer.trigger().map(|b| b.kind.as_str()),
            Some("timerTrigger")
        );
    }

    #[test]
    fn malformed_bindings_are_errors() {
        let no_direction = json!({"bindings": [{"type": "httpTrigger", "name": "req"}]});
        assert!(FunctionConfig::from_json("f", &no_direction).is_err());
        assert!(FunctionConfig::from_json("f", &json!({})).is_err());
    }
}
