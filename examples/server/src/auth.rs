//! Bearer API keys: every `/v1` request carries `Authorization: Bearer <key>`. Keys are compared
//! in constant time and never written to logs or error messages.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::Extensions;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use modelservice::Error;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::AppState;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Chat completions and models.
    User,
    /// Also service management (deploy, scale, delete).
    Admin,
}

/// The configured keys.
pub struct Keys {
    user: Vec<Vec<u8>>,
    admin: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Counts only: keys must never reach a log.
        f.debug_struct("Keys")
            .field("user", &self.user.len())
            .field("admin", &self.admin.len())
            .finish()
    }
}

impl Keys {
    pub fn new(user: Vec<String>, admin: Vec<String>) -> Self {
        Keys {
            user: user.into_iter().map(String::into_bytes).collect(),
            admin: admin.into_iter().map(String::into_bytes).collect(),
        }
    }

    /// Whether management needs an admin key (it does as soon as one is configured).
    pub fn admin_required(&self) -> bool {
        !self.admin.is_empty()
    }

    /// The access a presented key grants, if any. Every configured key is compared, with no
    /// early exit, so timing does not tell which key (or which prefix) matched.
    pub fn check(&self, presented: &[u8]) -> Option<Access> {
        let matches = |keys: &[Vec<u8>]| {
            keys.iter()
                .fold(subtle::Choice::from(0), |acc, k| acc | k.ct_eq(presented))
        };
        let admin = matches(&self.admin);
        let user = matches(&self.user);
        if bool::from(admin) {
            Some(Access::Admin)
        } else if bool::from(user) {
            // Without admin keys every valid key may manage services.
            Some(if self.admin_required() {
                Access::User
            } else {
                Access::Admin
            })
        } else {
            None
        }
    }
}

fn unauthorized(message: &str) -> Response {
    ApiError::from(Error::Authentication {
        message: message.to_owned(),
    })
    .into_response()
}

/// Middleware for every `/v1` route: checks the Bearer key and records its access level in the
/// request's extensions for the routes that need an admin key.
pub async fn require_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return unauthorized(
            "You didn't provide an API key. You need to provide your API key in an Authorization header \
             using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        );
    };
    let bytes = value.as_bytes();
    let key = match bytes.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => bytes[7..].trim_ascii(),
        _ => return unauthorized(
            "The Authorization header must use Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        ),
    };
    match state.keys.check(key) {
        Some(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        None => unauthorized("Incorrect API key provided."),
    }
}

/// The check of routes that need an admin key (when admin keys are configured): the access
/// that [`require_key`] recorded must be admin.
pub fn require_admin(extensions: &Extensions) -> Result<(), ApiError> {
    match extensions.get::<Access>() {
        Some(Access::Admin) => Ok(()),
        _ => Err(Error::Authentication {
            message: "Managing services needs an admin key.".to_owned(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_grant_access_by_kind() {
        let keys = Keys::new(vec!["user-key".into()], vec!["admin-key".into()]);
        assert_eq!(keys.check(b"user-key"), Some(Access::User));
        assert_eq!(keys.check(b"admin-key"), Some(Access::Admin));
        for wrong in [&b""[..], b"user-ke", b"user-key2", b"USER-KEY", b"admin"] {
            assert_eq!(keys.check(wrong), None, "{wrong:?}");
        }
        // With no admin key configured, any valid key manages services.
        let open = Keys::new(vec!["k".into()], vec![]);
        assert_eq!(open.check(b"k"), Some(Access::Admin));
        assert!(
            !format!("{keys:?}").contains("key"),
            "Debug must not print keys"
        );
    }
}
