//! The one mapping from application errors to gRPC statuses.

use tonic::codegen::http;
use tonic::{Code, Status};

use crate::app::AppError;

/// tonic answers a request that does not decode (a string field that is not UTF-8, a truncated
/// message, a wrong wire type) with INTERNAL, as if the server had failed. The fault is the
/// caller's input, so the status becomes INVALID_ARGUMENT; prost's message, kept as it is,
/// already names the field ("failed to decode Protobuf message: Comment.content: ...").
pub fn decode_errors_are_invalid_argument<B>(mut resp: http::Response<B>) -> http::Response<B> {
    let headers = resp.headers();
    let internal = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"13");
    let decode = headers.get("grpc-message").is_some_and(|m| {
        let m = m.as_bytes();
        m.starts_with(b"failed%20to%20decode") || m.starts_with(b"failed to decode")
    });
    if internal && decode {
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
