//! The numeric codes of OMA-DM: statuses and alerts.

macro_rules! code_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A code this crate has no name for.
            Other(u16),
        }

        impl $name {
            /// The number on the wire.
            pub fn as_u16(self) -> u16 {
                match self {
                    $($name::$variant => $value,)*
                    $name::Other(n) => n,
                }
            }
        }

        impl From<u16> for $name {
            fn from(n: u16) -> Self {
                match n {
                    $($value => $name::$variant,)*
                    n => $name::Other(n),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.as_u16())
            }
        }
    };
}

code_enum! {
    /// A SyncML status code (the `Data` of a `Status`).
    StatusCode {
        /// 200 OK.
        Ok = 200,
        /// 202 accepted for asynchronous processing.
        AcceptedForProcessing = 202,
        /// 212 authentication accepted.
        AuthenticationAccepted = 212,
        /// 213 chunked item accepted.
        ChunkAccepted = 213,
        /// 214 operation cancelled.
        Cancelled = 214,
        /// 215 not executed.
        NotExecuted = 215,
        /// 216 atomic roll back OK.
        AtomicRollbackOk = 216,
        /// 400 bad request.
        BadRequest = 400,
        /// 401 invalid credentials.
        InvalidCredentials = 401,
        /// 403 forbidden.
        Forbidden = 403,
        /// 404 not found.
        NotFound = 404,
        /// 405 command not allowed.
        CommandNotAllowed = 405,
        /// 406 optional feature not supported.
        OptionalFeatureNotSupported = 406,
        /// 407 authentication required.
        AuthenticationRequired = 407,
        /// 415 unsupported media type or format.
        UnsupportedMediaType = 415,
        /// 418 already exists.
        AlreadyExists = 418,
        /// 425 permission denied.
        PermissionDenied = 425,
        /// 500 command failed.
        CommandFailed = 500,
        /// 507 atomic failed.
        AtomicFailed = 507,
        /// 516 atomic roll back failed.
        AtomicRollbackFailed = 516,
    }
}

impl StatusCode {
    /// True for the 2xx codes.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.as_u16())
    }

    /// What the code means, in OMA-DM's words (empty for a code without a name).
    pub fn meaning(self) -> &'static str {
        match self {
            StatusCode::Ok => "OK",
            StatusCode::AcceptedForProcessing => "accepted for processing",
            StatusCode::AuthenticationAccepted => "authentication accepted",
            StatusCode::ChunkAccepted => "chunked item accepted",
            StatusCode::Cancelled => "operation cancelled",
            StatusCode::NotExecuted => "not executed",
            StatusCode::AtomicRollbackOk => "atomic roll back OK",
            StatusCode::BadRequest => "bad request",
            StatusCode::InvalidCredentials => "invalid credentials",
            StatusCode::Forbidden => "forbidden",
            StatusCode::NotFound => "not found",
            StatusCode::CommandNotAllowed => "command not allowed",
            StatusCode::OptionalFeatureNotSupported => "optional feature not supported",
            StatusCode::AuthenticationRequired => "missing credentials",
            StatusCode::UnsupportedMediaType => "unsupported media type or format",
            StatusCode::AlreadyExists => "already exists",
            StatusCode::PermissionDenied => "permission denied",
            StatusCode::CommandFailed => "command failed",
            StatusCode::AtomicFailed => "atomic failed",
            StatusCode::AtomicRollbackFailed => "atomic roll back failed",
            StatusCode::Other(_) => "",
        }
    }
}

code_enum! {
    /// An alert code (the `Data` of an `Alert`).
    AlertCode {
        /// 1200 server-initiated session.
        ServerInitiated = 1200,
        /// 1201 client-initiated session.
        ClientInitiated = 1201,
        /// 1222 more messages follow: send the next one.
        NextMessage = 1222,
        /// 1223 session abort.
        SessionAbort = 1223,
        /// 1224 client event (LoginStatus, asynchronous CSP results).
        ClientEvent = 1224,
        /// 1225 no end of data.
        NoEndOfData = 1225,
        /// 1226 generic alert.
        GenericAlert = 1226,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_numbers() {
        for n in [
            200, 202, 212, 213, 214, 215, 216, 400, 401, 403, 404, 405, 406, 407, 415, 418, 425,
            500, 507, 516, 299,
        ] {
            assert_eq!(StatusCode::from(n).as_u16(), n);
        }
        assert_eq!(StatusCode::from(418), StatusCode::AlreadyExists);
        assert_eq!(StatusCode::from(299), StatusCode::Other(299));
        assert!(StatusCode::AuthenticationAccepted.is_success());
        assert!(!StatusCode::AtomicFailed.is_success());
        assert_eq!(AlertCode::from(1226), AlertCode::GenericAlert);
        assert_eq!(AlertCode::SessionAbort.to_string(), "1223");
    }
}
