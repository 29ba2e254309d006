//! Turning JavaScript exceptions into readable messages and into the runtime's `InvokeError`.

use deployment::FunctionLimits;
use rquickjs::convert::Coerced;
use rquickjs::{Ctx, Object, Value};
use runtime::InvokeError;

/// The parts of a thrown value that a builder needs to find the fault.
pub(crate) struct JsException {
    pub name: String,
    pub message: String,
    pub stack: String,
    /// `null` was thrown: what QuickJS throws when it has no memory left even for its
    /// out-of-memory error (an app's own `throw null` reads the same, and is rare).
    pub null: bool,
}

impl JsException {
    pub(crate) fn from_value(value: Value<'_>) -> JsException {
        let Some(object) = value.as_object() else {
            // `throw "text"` or `throw 42`: no name, no stack.
            let message = value
                .get::<Coerced<String>>()
                .map(|text| text.0)
                .unwrap_or_else(|_| "(a value that cannot be printed)".to_owned());
            return JsException { name: String::new(), message, stack: String::new(), null: value.is_null() };
        };
        JsException {
            name: text_property(object, "name"),
            message: text_property(object, "message"),
            stack: text_property(object, "stack"),
            null: false,
        }
    }

    /// `TypeError: x is not a function` followed by the stack, as a browser console shows it.
    pub(crate) fn describe(&self) -> String {
        let head = match (self.name.is_empty(), self.message.is_empty()) {
            (true, _) => format!("Uncaught {}", self.message),
            (false, true) => self.name.clone(),
            (false, false) => format!("{}: {}", self.name, self.message),
        };
        match self.stack.trim_end() {
            "" => head,
            stack => format!("{head}\n{stack}"),
        }
    }

    /// Which limit, if any, this exception reports; otherwise the app's own fault.
    pub(crate) fn classify(&self, interrupted: bool, limits: &FunctionLimits) -> InvokeError {
        if interrupted {
            return InvokeError::CpuLimit { limit_ms: limits.cpu_ms_per_request };
        }
        if self.null {
            return InvokeError::MemoryLimit { limit_bytes: limits.memory_bytes };
        }
        match (self.name.as_str(), self.message.as_str()) {
            ("InternalError", "out of memory") => InvokeError::MemoryLimit { limit_bytes: limits.memory_bytes },
            ("RangeError", "Maximum call stack size exceeded") => InvokeError::StackOverflow,
            _ => InvokeError::Exception { message: self.describe() },
        }
    }
}

fn text_property(object: &Object<'_>, key: &str) -> String {
    match object.get::<_, Option<Coerced<String>>>(key) {
        Ok(Some(text)) => text.0,
        _ => String::new(),
    }
}

/// A one-line-plus-stack description of a caught exception.
pub(crate) fn describe_exception(_ctx: &Ctx<'_>, value: Value<'_>) -> String {
    JsException::from_value(value).describe()
}

/// Whether an instance that produced this error must be thrown away rather than reused:
/// after a limit its heap or stack may be in any state.
pub(crate) fn discards_instance(error: &InvokeError) -> bool {
    match error {
        InvokeError::CpuLimit { .. }
        | InvokeError::MemoryLimit { .. }
        | InvokeError::StackOverflow
        | InvokeError::WallTimeout { .. } => true,
        InvokeError::Exception { .. }
        | InvokeError::ResponseTooLarge { .. }
        | InvokeError::BadReturn { .. }
        | InvokeError::Load(_)
        | InvokeError::Overloaded => false,
    }
}
