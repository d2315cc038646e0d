//! The one mapping from application errors to gRPC statuses.

use tonic::codegen::http;
use tonic::{Code, Status};

use crate::app::AppError;

/// tonic answers a request that does not decode (a string field that is not UTF-8, a truncated
/// message, a wrong wire type) with INTERNAL, as if the server had failed, and one over
/// `max_message_bytes` with OUT_OF_RANGE. Both are the caller's input, so the status becomes
/// INVALID_ARGUMENT, like every other bad input; tonic's and prost's messages are kept as they
/// are: they name the field ("failed to decode Protobuf message: Comment.content: ...") or the
/// size and the limit ("decoded message length too large: found 102400 bytes, the limit is:
/// 65536 bytes").
pub fn decode_errors_are_invalid_argument<B>(mut resp: http::Response<B>) -> http::Response<B> {
    let headers = resp.headers();
    let message = |prefixes: &[&[u8]]| {
        headers
            .get("grpc-message")
            .is_some_and(|m| prefixes.iter().any(|p| m.as_bytes().starts_with(p)))
    };
    let bad_input = match headers.get("grpc-status").map(|v| v.as_bytes()) {
        Some(b"13") => message(&[b"failed%20to%20decode", b"failed to decode"]),
        Some(b"11") => message(&[
            b"Error,%20decoded%20message%20length%20too%20large",
            b"Error, decoded message length too large",
        ]),
        _ => false,
    };
    if bad_input {
        resp.headers_mut().insert(
            "grpc-status",
            http::HeaderValue::from_static("3"), // INVALID_ARGUMENT
        );
    }
    resp
}

impl From<AppError> for Status {
    fn from(e: AppError) -> Status {
        let code = match &e {
            AppError::InvalidArgument { .. } => Code::InvalidArgument,
            AppError::Unauthenticated(_) => Code::Unauthenticated,
            AppError::PermissionDenied(_) => Code::PermissionDenied,
            AppError::NotFound(_) => Code::NotFound,
            AppError::Unavailable(_) => Code::Unavailable,
            AppError::FailedPrecondition(_) => Code::FailedPrecondition,
            AppError::Internal(_) => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_decode_failures_become_invalid_argument() {
        let resp = |status: &'static str, message: &'static str| {
            http::Response::builder()
                .header("grpc-status", status)
                .header("grpc-message", message)
                .body(())
                .unwrap()
        };
        let fixed = decode_errors_are_invalid_argument(resp(
            "13",
            "failed%20to%20decode%20Protobuf%20message:%20Comment.content",
        ));
        assert_eq!(fixed.headers()["grpc-status"], "3");
        assert!(fixed.headers()["grpc-message"]
            .to_str()
            .unwrap()
            .contains("Comment.content"));
        let kept = decode_errors_are_invalid_argument(resp("13", "model%20store%20failed"));
        assert_eq!(kept.headers()["grpc-status"], "13");
        let other = decode_errors_are_invalid_argument(resp("14", "failed%20to%20decode"));
        assert_eq!(other.headers()["grpc-status"], "14");
        let big = decode_errors_are_invalid_argument(resp(
            "11",
            "Error,%20decoded%20message%20length%20too%20large:%20found%20102400%20bytes",
        ));
        assert_eq!(big.headers()["grpc-status"], "3");
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let s: Status = AppError::InvalidArgument {
            field: "comment.content".into(),
            message: "must not be empty".into(),
        }
        .into();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "comment.content: must not be empty");
    }
}
