//! The `CommentFilter` service: authenticate, convert, call the app, convert back.

use tonic::{Request, Response, Status, Streaming};

use super::pb::comment_filter_server::CommentFilter;
use super::{convert, pb};
use crate::app::StatsQuery;
use crate::app::{App, AppError, Caller, CheckInput, FeedbackInput, ImportItem, ImportOutcome};

/// The gRPC face of [`App`].
#[derive(Debug, Clone)]
pub struct FilterService {
    app: App,
}

impl FilterService {
    /// Wraps the application.
    pub fn new(app: App) -> FilterService {
        FilterService { app }
    }

    fn caller<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        let bearer = match req.metadata().get("authorization") {
            None => None,
            Some(v) => Some(
                crate::config::bearer_key(v.as_bytes())
                    .map_err(|e| Status::unauthenticated(e.to_string()))?,
            ),
        };
        Ok(self.app.authenticate(bearer)?)
    }
}

#[tonic::async_trait]
impl CommentFilter for FilterService {
    async fn check(
        &self,
        req: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckResponse>, Status> {
        let caller = self.caller(&req)?;
        let input = CheckInput::try_from(req.into_inner())?;
        let outcome = self.app.check(&caller, input).await?;
        Ok(Response::new(outcome.into()))
    }

    async fn check_batch(
        &self,
        req: Request<pb::CheckBatchRequest>,
    ) -> Result<Response<pb::CheckBatchResponse>, Status> {
        let caller = self.caller(&req)?;
        let inputs = req
            .into_inner()
            .requests
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                CheckInput::try_from(r).map_err(|e| e.in_field(&format!("requests[{i}]")))
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let outcomes = self.app.check_batch(&caller, inputs).await?;
        Ok(Response::new(pb::CheckBatchResponse {
            responses: outcomes.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_model_info(
        &self,
        req: Request<pb::GetModelInfoRequest>,
    ) -> Result<Response<pb::GetModelInfoResponse>, Status> {
        let caller = self.caller(&req)?;
        Ok(Response::new(self.app.model_info(&caller).into()))
    }

    async fn retrain(
        &self,
        req: Request<pb::RetrainRequest>,
    ) -> Result<Response<pb::RetrainResponse>, Status> {
        let caller = self.caller(&req)?;
        let (r, version) = self.app.retrain(&caller).await?;
        Ok(Response::new(pb::RetrainResponse {
            accepted: r.accepted,
            current_auc: r.current_auc,
            candidate_auc: r.candidate_auc,
            labels_trained: r.labels_trained as u64,
            labels_held_back: r.labels_held_back as u64,
            model_version: version,
            verdict: r.verdict,
        }))
    }

    async fn rollback(
        &self,
        req: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        let caller = self.caller(&req)?;
        let model_version = self.app.rollback(&caller).await?;
        Ok(Response::new(pb::RollbackResponse { model_version }))
    }

    async fn get_stats(
        &self,
        req: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::GetStatsResponse>, Status> {
        let caller = self.caller(&req)?;
        let query = StatsQuery::try_from(req.into_inner())?;
        let report = self
            .app
            .stats(&caller, query)
            .await
            .map_err(convert::stats_error_to_proto)?;
        Ok(Response::new(report.into()))
    }

    async fn feedback(
        &self,
        req: Request<pb::FeedbackRequest>,
    ) -> Result<Response<pb::FeedbackResponse>, Status> {
        let caller = self.caller(&req)?;
        let input = FeedbackInput::try_from(req.into_inner())?;
        let outcome = self.app.feedback(&caller, input).await?;
        Ok(Response::new(outcome.into()))
    }

    async fn import_labels(
        &self,
        req: Request<Streaming<pb::ImportLabelsRequest>>,
    ) -> Result<Response<pb::ImportLabelsResponse>, Status> {
        let caller = self.caller(&req)?;
        self.app.may_import(&caller)?;
        let mut stream = req.into_inner();
        let mut total = ImportOutcome::default();
        let mut n = 0u64;
        // One message at a time: each is logged before the next is read, so a client that
        // streams faster than the log commits waits (HTTP/2 flow control), and memory holds
        // one message.
        while let Some(msg) = stream.message().await? {
            let items = msg
                .labels
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    ImportItem::try_from(l).map_err(|e| e.in_field(&format!("labels[{i}]")))
                })
                .collect::<Result<Vec<_>, AppError>>()
                .map_err(|e| in_message(e, n, &total))?;
            total += self
                .app
                .import_labels(&caller, &msg.site, items)
                .await
                .map_err(|e| in_message(e, n, &total))?;
            n += 1;
        }
        Ok(Response::new(total.into()))
    }
}

/// An import error, saying which message of the stream it is about and what the messages
/// before it did (they stay imported).
fn in_message(e: AppError, n: u64, before: &ImportOutcome) -> AppError {
    let context = format!(
        " (message {n} of the stream, counting from 0; the messages before it appended {} labels, which stay; importing again skips them)",
        before.appended
    );
    match e {
        AppError::InvalidArgument { field, message } => AppError::InvalidArgument {
            field,
            message: message + &context,
        },
        AppError::Unavailable(m) => AppError::Unavailable(m + &context),
        other => other,
    }
}
