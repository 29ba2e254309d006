//! The walls between apps' cookies. Every app lives under one parent domain that is not on the
//! Public Suffix List, so browsers would let any app set cookies for its siblings and for the
//! platform. The gateway keeps an app's `Set-Cookie` only when it stays on the app's own host
//! (or, for a path-routed app on the platform's host, under the app's own path), never takes a
//! platform cookie's name, and never outranks the platform's session in a browser's eviction.

/// The platform's session cookie: `__Host-` so browsers refuse it from anyone but the host
/// itself (Secure, `Path=/`, no `Domain`).
pub const SESSION_COOKIE: &str = "__Host-terrarium_session";
/// The session cookie where the operator runs plain HTTP on a non-local name
/// (`gateway.insecure_cookies`): browsers refuse `__Host-` cookies without `Secure`.
pub const INSECURE_SESSION_COOKIE: &str = "terrarium_session";
/// `Set-Cookie` headers kept from one response; the rest are dropped.
pub const MAX_SET_COOKIES: usize = 32;

/// Where an app's response is served: its own host, or under a path of the platform's host.
#[derive(Clone, Copy, Debug)]
pub enum CookieScope<'a> {
    /// `<app>.<ns>.<apps-domain>`, without the port.
    Host(&'a str),
    /// `/apps/<ns>/<app>` on the platform's host.
    Mount(&'a str),
}

/// Whether `name` is one the platform keeps for itself: `terrarium…`, with or without a
/// `__Host-` or `__Secure-` prefix, in any case.
pub fn is_reserved(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("__host-").or_else(|| lower.strip_prefix("__secure-")).unwrap_or(&lower);
    bare.starts_with("terrarium")
}

/// What the gateway does with one `Set-Cookie` of an app's response.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Passed on as it is, or with its `Priority` removed.
    Keep(String),
    /// Dropped; the reason is for the app's log (names the cookie, never its value).
    Drop(String),
}

/// Checks one `Set-Cookie` value of an app's response.
pub fn check(set_cookie: &str, scope: CookieScope<'_>) -> Verdict {
    let mut parts = set_cookie.split(';');
    let pair = parts.next().unwrap_or_default();
    let Some((name, _)) = pair.split_once('=') else {
        return Verdict::Drop("a Set-Cookie without name=value".to_owned());
    };
    let name = name.trim();
    if is_reserved(name) {
        return Verdict::Drop(format!("cookie {name:?}: names starting with \"terrarium\" are the platform's"));
    }
    let mut kept = vec![pair.to_owned()];
    for attribute in parts {
        let (key, value) = attribute.split_once('=').unwrap_or((attribute, ""));
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        match (key.as_str(), scope) {
            ("domain", CookieScope::Host(host)) => {
                let domain = value.trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase();
                if domain != host {
                    return Verdict::Drop(format!(
                        "cookie {name:?}: Domain={value} reaches beyond this app's host {host}; leave Domain out"
                    ));
                }
            }
            ("domain", CookieScope::Mount(mount)) => {
                return Verdict::Drop(format!(
                    "cookie {name:?}: an app served under {mount} may not set Domain={value}; leave Domain out"
                ));
            }
            ("path", CookieScope::Mount(mount)) if !(value == mount || value.starts_with(&format!("{mount}/"))) => {
                return Verdict::Drop(format!(
                    "cookie {name:?}: Path={value} is outside this app's {mount}/; leave Path out or keep it under {mount}/"
                ));
            }
            // Browsers evict low-priority cookies first: an app's cookies never outrank the
            // platform's session.
            ("priority", _) => continue,
            _ => {}
        }
        kept.push(attribute.to_owned());
    }
    Verdict::Keep(kept.join(";"))
}

/// The platform session cookies a request carries under this server's session name: only
/// `__Host-terrarium_session` where cookies are secure, which no other host can have set.
pub fn session_values<'a>(cookie_headers: impl Iterator<Item = &'a str>, secure: bool) -> Vec<&'a str> {
    let wanted = match secure {
        true => SESSION_COOKIE,
        false => INSECURE_SESSION_COOKIE,
    };
    cookie_headers
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
        .collect()
}

/// The `Set-Cookie` value of a platform session: HTTP-only, same-site, host-only, and the
/// highest priority, so a browser evicting cookies for a crowded domain keeps it.
pub fn session_cookie_header(token: &str, secure: bool) -> String {
    match secure {
        true => {
            format!("{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Lax; Priority=High; Max-Age=43200")
        }
        false => {
            format!("{INSECURE_SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Priority=High; Max-Age=43200")
        }
    }
}

/// The `Set-Cookie` value that ends a platform session.
pub fn cleared_session_cookie(secure: bool) -> String {
    match secure {
        true => format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"),
        false => format!("{INSECURE_SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: CookieScope<'static> = CookieScope::Host("lunch.growth.localhost");
    const MOUNT: CookieScope<'static> = CookieScope::Mount("/apps/growth/lunch");

    fn dropped(verdict: Verdict) -> bool {
        matches!(verdict, Verdict::Drop(_))
    }

    #[test]
    fn an_app_keeps_its_own_cookies() {
        assert_eq!(check("theme=dark; Path=/; HttpOnly", HOST), Verdict::Keep("theme=dark; Path=/; HttpOnly".into()));
        assert_eq!(
            check("theme=dark; Domain=lunch.growth.localhost", HOST),
            Verdict::Keep("theme=dark; Domain=lunch.growth.localhost".into())
        );
        assert!(!dropped(check("cart=1; Path=/apps/growth/lunch/cart", MOUNT)));
        assert!(!dropped(check("cart=1", MOUNT)), "no Path: the browser scopes it to the request's directory");
    }

    #[test]
    fn cookies_for_siblings_or_the_platform_are_dropped() {
        for attack in [
            "x=1; Domain=localhost",
            "x=1; Domain=.localhost",
            "x=1; Domain=growth.localhost",
            "x=1; Domain=other.growth.localhost",
            "x=1; domain=LOCALHOST; Path=/",
        ] {
            assert!(dropped(check(attack, HOST)), "{attack}");
        }
        assert!(dropped(check("x=1; Domain=127.0.0.1", MOUNT)));
        assert!(dropped(check("x=1; Path=/", MOUNT)));
        assert!(dropped(check("x=1; Path=/apps/growth/lunchbox", MOUNT)));
        assert!(dropped(check("x=1; Path=/apps/other/app", MOUNT)));
    }

    #[test]
    fn the_platform_names_are_reserved_in_every_spelling() {
        for name in [
            "terrarium_session",
            "__Host-terrarium_session",
            "__host-Terrarium_Session",
            "__Secure-terrarium_x",
            " terrarium",
        ] {
            assert!(dropped(check(&format!("{name}=attacker; Path=/"), HOST)), "{name}");
        }
        assert!(!is_reserved("my_terrarium"));
    }

    #[test]
    fn an_app_cannot_raise_its_priority() {
        assert_eq!(check("a=1; Priority=High; Secure", HOST), Verdict::Keep("a=1; Secure".into()));
    }

    #[test]
    fn every_session_value_is_found() {
        let headers = ["a=1; __Host-terrarium_session=one", "terrarium_session=two; __Host-terrarium_session=3"];
        assert_eq!(session_values(headers.into_iter(), true), ["one", "3"]);
        assert_eq!(session_values(headers.into_iter(), false), ["two"], "a planted plain name is not the session");
        assert!(session_cookie_header("t", true).starts_with("__Host-terrarium_session=t; Path=/; Secure"));
    }
}
