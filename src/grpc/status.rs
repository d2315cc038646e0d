//! The one mapping from application errors to gRPC statuses.

use tonic::{Code, Status};

use crate::app::AppError;

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
