//! Sign-in: accounts' sessions, the language switch, the CSRF check.

use super::*;

/// The sign-in cookie's name.
pub(super) const COOKIE: &str = "guihe_session";

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// What every page handler starts with.
pub(super) struct Ctx {
    pub(super) lang: Lang,
    pub(super) user: WebSession,
    pub(super) token: String,
    /// This office's node.
    pub(super) node: guihe_protocol::id::NodeId,
    /// This office's division.
    pub(super) division: guihe_protocol::division::Division,
}

impl Ctx {
    /// The signed-in person, as the record's visibility asks (see `Common::visible_to`).
    pub(super) fn viewer(&self) -> guihe_protocol::view::Viewer<'_> {
        guihe_protocol::view::Viewer {
            node: &self.node,
            staff: &self.user.staff,
            reviews_for: crate::api::reviews_for(
                self.user.role == StaffRole::TownshipReviewer,
                self.division,
            ),
        }
    }
}

pub(super) fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Ctx, Response> {
    let lang = Lang::of(headers);
    let token = cookie(headers, COOKIE).unwrap_or("");
    match state.web.get(token) {
        Some(user) => Ok(Ctx {
            lang,
            user,
            token: token.to_string(),
            node: state.node,
            division: state.division,
        }),
        None => Err(Redirect::to("/login").into_response()),
    }
}

/// The signed-in person behind a form that writes: the form carries their session's CSRF
/// token and their role records; else the page that refuses it (`refusal` names what the
/// role may not do).
pub(super) fn signed_in_to_write(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    refusal: (&str, &str),
) -> Result<Ctx, Response> {
    let ctx = signed_in(state, headers)?;
    csrf_ok(&ctx, form.get("csrf").map(String::as_str).unwrap_or(""))?;
    if !ctx.user.role.writes() {
        return Err(message_page(
            ctx.lang,
            Some(&ctx),
            StatusCode::FORBIDDEN,
            ctx.lang.t(refusal.0, refusal.1),
        ));
    }
    Ok(ctx)
}

pub(super) fn csrf_ok(ctx: &Ctx, given: &str) -> Result<(), Response> {
    let expected = ctx.user.csrf.as_bytes();
    let same = expected.len() == given.len()
        && expected
            .iter()
            .zip(given.as_bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if same {
        Ok(())
    } else {
        Err(message_page(
            ctx.lang,
            Some(ctx),
            StatusCode::FORBIDDEN,
            ctx.lang.t(
                "表单已过期，请返回重试。",
                "The form has expired; go back and try again.",
            ),
        ))
    }
}

pub(super) async fn set_lang(Path(lang): Path<String>) -> Response {
    let value = if lang == "en" { "en" } else { "zh" };
    (
        [(
            header::SET_COOKIE,
            format!("lang={value}; Path=/; SameSite=Strict; Max-Age=31536000"),
        )],
        Redirect::to("/todo"),
    )
        .into_response()
}

pub(super) fn login_body(lang: Lang, error: Option<&str>) -> Markup {
    let t = |zh, en| lang.t(zh, en);
    html! {
        @if let Some(e) = error { p.error { (e) } }
        form method="post" action="/login" {
            label { (t("用户名", "User name")) input type="text" name="name" autofocus; }
            label { (t("密码", "Password")) input type="password" name="password"; }
            button type="submit" id="login" { (t("登录", "Sign in")) }
        }
    }
}

pub(super) async fn login_form(headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    page(
        lang,
        None,
        lang.t("登录", "Sign in"),
        login_body(lang, None),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    pub(super) name: String,
    pub(super) password: String,
}

pub(super) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let account = match call(
        &state,
        None,
        Call::Account {
            name: f.name.trim().to_string(),
        },
    )
    .await
    {
        Ok(Reply::Account(a)) => a,
        _ => None,
    };
    // The hash is checked off the node's core task: it is slow on purpose.
    let checked = match account {
        Some(a) => {
            let password = f.password.clone();
            tokio::task::spawn_blocking(move || a.check(&password).then_some(a))
                .await
                .ok()
                .flatten()
        }
        None => None,
    };
    let Some(account) = checked else {
        let body = login_body(
            lang,
            Some(lang.t("用户名或密码不对。", "Wrong user name or password.")),
        );
        return (
            StatusCode::UNAUTHORIZED,
            Html(layout(lang, None, lang.t("登录", "Sign in"), body).into_string()),
        )
            .into_response();
    };
    let token = state.web.open(&account);
    (
        [(
            header::SET_COOKIE,
            format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                SESSION_TTL.as_secs()
            ),
        )],
        Redirect::to("/todo"),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = csrf_ok(&ctx, &f.csrf) {
        return r;
    }
    state.web.close(&ctx.token);
    (
        [(header::SET_COOKIE, format!("{COOKIE}=; Path=/; Max-Age=0"))],
        Redirect::to("/login"),
    )
        .into_response()
}
