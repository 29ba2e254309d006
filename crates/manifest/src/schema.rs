//! The JSON Schema of `terrarium.yaml`, published by `terrarium schema` for editors.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::model::{DataClass, MicroApp};

/// The JSON Schema (draft 2020-12) of the `MicroApp` resource, v1.
///
/// Every group of fields refuses unknown fields (`additionalProperties: false`) and every field
/// carries its description. `status` is listed as deprecated because a file may hold one (copied
/// from `kubectl get -o yaml`) but it is ignored with a warning.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(MicroApp);
    if let Some(properties) = schema.get_mut("properties").and_then(|value| value.as_object_mut()) {
        properties.insert(
            "status".into(),
            serde_json::json!({
                "description": "Written by the control plane. Ignored in terrarium.yaml, with a warning.",
                "type": "object",
                "deprecated": true,
            }),
        );
    }
    schema.to_value()
}

/// `spec.vars`: names are identifiers, values are text, numbers or true/false.
pub(crate) fn vars_schema(_generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["object", "null"],
        "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
        "additionalProperties": { "type": ["string", "number", "boolean"] },
    })
}

/// `metadata.labels`: Kubernetes label values, and the `dataClass` label's fixed values.
pub(crate) fn labels_schema(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["object", "null"],
        "properties": { "dataClass": DataClass::json_schema(generator) },
        "additionalProperties": {
            "type": "string",
            "maxLength": 63,
            "pattern": "^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$",
        },
    })
}
