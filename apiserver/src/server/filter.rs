//! Which objects a list or watch returns: label and field selectors.

use serde_json::Value;

use super::{Ctx, object};
use crate::error::{Error, Result};
use crate::selector::{FieldSelector, LabelSelector};

pub struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// The selectors of a request; a field the kind cannot select by is a 400.
    pub fn new(ctx: &Ctx) -> Result<Filter> {
        let labels = LabelSelector::parse(&ctx.params.label_selector).map_err(|e| {
            Error::BadRequest(format!("labelSelector: Invalid value: {:?}: {e}", ctx.params.label_selector))
        })?;
        let mut fields = FieldSelector::parse(&ctx.params.field_selector).map_err(|e| {
            Error::BadRequest(format!("fieldSelector: Invalid value: {:?}: {e}", ctx.params.field_selector))
        })?;
        for f in fields.fields() {
            if !ctx.kind.selectable(f) {
                return Err(Error::BadRequest(format!(
                    "fieldSelector: field label not supported: {f} (selectable fields of {}: {})",
                    ctx.kind.resource(),
                    selectable_list(ctx)
                )));
            }
        }
        // A watch on `/jobs/NAME?watch=true` is a watch with `metadata.name=NAME`.
        if let Some(name) = &ctx.name {
            fields.0.push(crate::selector::FieldRequirement {
                field: "metadata.name".into(),
                equal: true,
                value: name.clone(),
            });
        }
        Ok(Filter { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(object::meta(obj).and_then(|m| m.get("labels")).and_then(Value::as_object))
            && self.fields.matches(|f| object::field_value(obj, f))
    }
}

fn selectable_list(ctx: &Ctx) -> String {
    let mut all = vec!["metadata.name".to_string()];
    if ctx.kind.namespaced {
        all.push("metadata.namespace".into());
    }
    all.extend(ctx.kind.selectable_fields.iter().cloned());
    all.join(", ")
}
