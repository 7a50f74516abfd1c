use crate::common::TestApp;

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    let app = TestApp::spawn().await;
    let c = app.anon();
    let r = c.get("/healthz").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.get("/readyz").await;
    assert_eq!(r.status, 200, "readyz: {}", r.text());
}

#[tokio::test]
async fn unknown_api_path_is_a_not_found_problem() {
    let app = TestApp::spawn().await;
    let r = app.admin().await.get("/api/v1/no-such-thing").await;
    crate::common::assert_problem(&r, 404, "not-found");
}

/// `/api/v1/docs` is a page, not an API problem: without a built console it says how to
/// build the reference and where the document is (the console's build serves Swagger UI there;
/// the e2e story `api-docs-story` drives it).
#[tokio::test]
async fn api_docs_page_answers_html_even_without_a_console() {
    let app = TestApp::spawn().await;
    let r = app.anon().get("/api/v1/docs").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.content_type().starts_with("text/html"),
        "{}",
        r.content_type()
    );
    assert!(r.text().contains("/api/v1/openapi.json"), "{}", r.text());
}
