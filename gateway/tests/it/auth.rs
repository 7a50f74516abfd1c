//! Login, the session cookie, users and roles, and the cookie CSRF rule.

use crate::common::{
    assert_field_error, assert_problem, session_cookie, TestApp, ADMIN_PASSWORD, USER_PASSWORD,
};
use serde_json::json;

#[tokio::test]
async fn wrong_password_is_401_and_nothing_works_without_login() {
    let app = TestApp::spawn().await;
    let c = app.anon();
    let r = app.try_login(&c, "admin", "not-the-password").await;
    assert_problem(&r, 401, "unauthenticated");
    assert!(
        session_cookie(&r.headers).is_none(),
        "no cookie on a failed login"
    );
    let r = app.try_login(&c, "nobody", "not-the-password").await;
    assert_problem(&r, 401, "unauthenticated");

    for path in [
        "/api/v1/sessions",
        "/api/v1/me",
        "/api/v1/users",
        "/api/v1/events",
    ] {
        let r = c.get(path).await;
        assert_problem(&r, 401, "unauthenticated");
    }
}

#[tokio::test]
async fn login_sets_an_httponly_lax_cookie_and_logout_ends_it() {
    let app = TestApp::spawn().await;
    let c = app.anon();
    let r = app.try_login(&c, "admin", ADMIN_PASSWORD).await;
    let me = r.expect_json(200);
    assert_eq!(me["username"], "admin");
    let (token, set_cookie) = session_cookie(&r.headers).expect("berth_session cookie");
    assert!(!token.is_empty());
    let attrs: Vec<String> = set_cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(attrs.iter().any(|a| a == "httponly"), "{set_cookie}");
    assert!(attrs.iter().any(|a| a == "samesite=lax"), "{set_cookie}");
    assert!(attrs.iter().any(|a| a == "path=/"), "{set_cookie}");

    // The client's cookie store now carries the login.
    let me = c.get("/api/v1/me").await.expect_json(200);
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "SUPERADMIN");
    assert!(me["id"]
        .as_str()
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));

    let r = c.post("/api/v1/auth/logout", &json!({})).await;
    assert!(r.status == 204 || r.status == 200, "logout: {}", r.status);
    assert_problem(&c.get("/api/v1/me").await, 401, "unauthenticated");

    // The old token is dead on the server too, not only forgotten by the client.
    let old = app.anon();
    let r = old
        .send(
            old.http
                .get(old.url("/api/v1/me"))
                .header("cookie", format!("berth_session={token}")),
        )
        .await;
    assert_problem(&r, 401, "unauthenticated");
}

#[tokio::test]
async fn admin_creates_users_and_bad_requests_name_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let made = admin
        .post(
            "/api/v1/users",
            &json!({"username": "alice", "password": USER_PASSWORD, "role": "user"}),
        )
        .await
        .expect_json(201);
    assert_eq!(made["username"], "alice");
    assert_eq!(made["role"], "USER");
    assert!(made.get("password").is_none() && made.get("password_hash").is_none());

    // Roles are accepted in any case.
    let r = admin
        .post(
            "/api/v1/users",
            &json!({"username": "bob", "password": USER_PASSWORD, "role": "Admin"}),
        )
        .await;
    assert_eq!(r.expect_json(201)["role"], "ADMIN");

    let r = admin
        .post(
            "/api/v1/users",
            &json!({"username": "alice", "password": USER_PASSWORD}),
        )
        .await;
    assert_problem(&r, 409, "conflict");

    let r = admin
        .post(
            "/api/v1/users",
            &json!({"username": "carol", "password": "short"}),
        )
        .await;
    assert_field_error(&r, "password");

    let r = admin
        .post(
            "/api/v1/users",
            &json!({"username": "Bad Name!", "password": USER_PASSWORD}),
        )
        .await;
    assert_field_error(&r, "username");

    let r = admin
        .post(
            "/api/v1/users",
            &json!({"username": "dave", "password": USER_PASSWORD, "role": "emperor"}),
        )
        .await;
    assert_field_error(&r, "role");

    let r = admin
        .post(
            "/api/v1/users",
            &json!({"username": "erin", "password": USER_PASSWORD, "colour": "red"}),
        )
        .await;
    assert_field_error(&r, "colour");

    // None of the refused ones exists.
    let users = admin.get("/api/v1/users").await.expect_json(200);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["admin", "alice", "bob"]);
}

#[tokio::test]
async fn roles_limit_who_may_create_whom() {
    let app = TestApp::spawn().await;
    app.create_user("boss", USER_PASSWORD, "admin").await;
    let plain = app.user("plain").await;
    let r = plain
        .post(
            "/api/v1/users",
            &json!({"username": "sneaky", "password": USER_PASSWORD}),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    assert_problem(&plain.get("/api/v1/users").await, 403, "forbidden");

    let boss = app.login("boss", USER_PASSWORD).await;
    let r = boss
        .post(
            "/api/v1/users",
            &json!({"username": "king", "password": USER_PASSWORD, "role": "superadmin"}),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    // An admin may create users and admins.
    boss.post(
        "/api/v1/users",
        &json!({"username": "helper", "password": USER_PASSWORD, "role": "admin"}),
    )
    .await
    .expect_json(201);

    let r = app.try_login(&app.anon(), "king", USER_PASSWORD).await;
    assert_problem(&r, 401, "unauthenticated");
}

#[tokio::test]
async fn cookie_post_from_another_origin_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let body = json!({"username": "victim-made", "password": USER_PASSWORD, "role": "admin"});
    let r = admin
        .send(
            admin
                .http
                .post(admin.url("/api/v1/users"))
                .header("origin", "http://evil.example")
                .json(&body),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    // A sibling origin on the same site is another origin too.
    let r = admin
        .send(
            admin
                .http
                .post(admin.url("/api/v1/users"))
                .header("origin", "http://jupyter--x.localhost")
                .json(&body),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    let r = admin
        .send(
            admin
                .http
                .delete(admin.url(&format!("/api/v1/sessions/{}", uuid::Uuid::new_v4())))
                .header("origin", "http://evil.example"),
        )
        .await;
    assert_problem(&r, 403, "forbidden");

    let users = admin.get("/api/v1/users").await.expect_json(200);
    assert!(
        !users.to_string().contains("victim-made"),
        "a refused request created a user: {users}"
    );

    // From the console's own origin it works.
    let r = admin
        .send(
            admin
                .http
                .post(admin.url("/api/v1/users"))
                .header("origin", app.base.clone())
                .json(&body),
        )
        .await;
    assert_eq!(r.expect_json(201)["username"], "victim-made");
}
