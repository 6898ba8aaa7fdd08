//! The dashboard's templates, embedded at build time and rendered with minijinja in
//! auto-escape mode (every value is HTML-escaped unless a template says otherwise, and
//! none does for scanned content).
//!
//! The environment is built once. Undefined variables are errors
//! ([`UndefinedBehavior::Strict`]), so a template that names a field its handler does not
//! supply fails its test instead of rendering an empty cell. Contexts are any
//! `serde::Serialize` value, converted through `serde_json` (the workspace builds minijinja
//! without its `serde` feature).
//!
//! Context keys every page may use: `user` (`name`, `role`, `csrf`, `admin`, `analyst`)
//! and `nav` (the active section) come from the page handlers. `login.html` and
//! `error.html` accept anything: every key is tested with `is defined` (see the templates).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::response::Html;
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::error::WebError;

/// `(name, source)` of each template file named, embedded at build time.
macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

/// Every template, by the name handlers render it with.
pub const TEMPLATES: &[(&str, &str)] = embedded![
    "base.html",
    "macros.html",
    "login.html",
    "error.html",
    "overview.html",
    "hosts.html",
    "host.html",
    "organisations.html",
    "organisation.html",
    "scans.html",
    "scan.html",
    "campaigns.html",
    "campaign.html",
    "triage_list.html",
    "triage.html",
    "account.html",
    "admin_users.html",
];

/// Renders template `name` (e.g. `overview.html`) with `context`.
pub fn render(name: &str, context: impl serde::Serialize) -> Result<Html<String>, WebError> {
    let context = serde_json::to_value(context)
        .map_err(|e| WebError::Internal(format!("template context for {name}: {e}")))?;
    let env = environment()?;
    let template = env
        .get_template(name)
        .map_err(|e| WebError::Internal(format!("template {name}: {e}")))?;
    template
        .render(to_value(context))
        .map(Html)
        .map_err(|e| WebError::Internal(format!("rendering {name}: {}", describe(&e))))
}

/// The environment, compiled on first use. A template that does not compile is an error
/// of every render (and of the test that renders each template).
fn environment() -> Result<&'static Environment<'static>, WebError> {
    static ENVIRONMENT: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(build_environment)
        .as_ref()
        .map_err(|e| WebError::Internal(e.clone()))
}

fn build_environment() -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // minijinja's default already escapes `.html`; said here so it never depends on it.
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    // Strings are escaped without minijinja's `/` → `&#x2f;` (valid, but it mangles every
    // URL and path shown); everything else as minijinja does.
    env.set_formatter(|out, state, value| {
        if matches!(state.auto_escape(), AutoEscape::Html)
            && !value.is_safe()
            && let Some(s) = value.as_str()
        {
            return out
                .write_str(&wachter_core::html::escape(s))
                .map_err(minijinja::Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
    // Block tags take their line ending with them, so the HTML has no runs of blank lines.
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| format!("template syntax: {e}"))?;
    env.set_syntax(syntax);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|e| format!("template {name} does not compile: {}", describe(&e)))?;
    }
    Ok(env)
}

fn to_value(v: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(b),
        J::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            _ => Value::from(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => Value::from(s),
        J::Array(items) => Value::from(items.into_iter().map(to_value).collect::<Vec<_>>()),
        J::Object(map) => Value::from(
            map.into_iter()
                .map(|(k, v)| (k, to_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

fn describe(e: &minijinja::Error) -> String {
    match (e.detail(), e.name(), e.line()) {
        (Some(detail), Some(name), Some(line)) => format!("{e} ({detail}; {name}:{line})"),
        (Some(detail), _, _) => format!("{e} ({detail})"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_template_compiles() {
        environment().unwrap();
        for (name, _) in TEMPLATES {
            environment().unwrap().get_template(name).unwrap();
        }
    }

    #[test]
    fn values_are_escaped_in_html_templates() {
        let page = render(
            "error.html",
            json!({"status": 404, "message": "<script>alert(1)</script> \"x\" 'y' a/b"}),
        )
        .unwrap()
        .0;
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("&quot;x&quot; &#39;y&#39; a/b"), "{page}");
        assert!(!page.contains("<script>alert"), "{page}");
    }

    #[test]
    fn every_template_renders_a_representative_context() {
        let examples = crate::pages::examples::contexts();
        for (name, _) in TEMPLATES {
            if *name == "base.html" || *name == "macros.html" {
                continue;
            }
            assert!(
                examples.iter().any(|(n, _)| n == name),
                "no example context for {name}"
            );
        }
        for (name, context) in examples {
            let html = render(name, &context)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .0;
            assert!(html.trim_end().ends_with("</html>"), "{name}");
            assert!(!html.contains("style="), "{name}: inline style");
            assert!(!html.contains("<script>"), "{name}: inline script");
        }
    }

    #[test]
    fn no_template_turns_escaping_off() {
        for (name, source) in TEMPLATES {
            let compact: String = source.chars().filter(|c| !c.is_whitespace()).collect();
            for banned in ["|safe", "autoescapefalse", "style=\"", "<script>", "<style"] {
                assert!(!compact.contains(banned), "{name} contains {banned}");
            }
        }
    }

    #[test]
    fn an_undefined_variable_is_an_error() {
        let err = render("overview.html", json!({})).unwrap_err();
        assert!(err.to_string().contains("overview.html"), "{err}");
    }
}
