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
