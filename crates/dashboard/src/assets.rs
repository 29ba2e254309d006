//! The console's stylesheet, script and pictures, compiled into the binary.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (name, content type, contents).
const ASSETS: &[(&str, &str, &str)] = &[
    ("console.css", "text/css; charset=utf-8", include_str!("../assets/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("../assets/console.js")),
    ("template-static-edge.svg", "image/svg+xml", include_str!("../assets/template-static-edge.svg")),
    ("template-static.svg", "image/svg+xml", include_str!("../assets/template-static.svg")),
    ("template-function.svg", "image/svg+xml", include_str!("../assets/template-function.svg")),
];

/// The address of an asset.
pub(crate) fn url(name: &str) -> String {
    format!("/console/assets/{name}")
}

pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, contents)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=300")], *contents)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such console asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_has_its_picture() {
        for template in app_templates::CATALOG {
            let name = format!("template-{}.svg", template.id);
            assert!(super::ASSETS.iter().any(|(asset, _, _)| *asset == name), "{name} is missing");
        }
    }
}
