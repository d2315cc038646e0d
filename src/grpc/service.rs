//! The `CommentFilter` service: authenticate, convert, call the app, convert back.

use tonic::{Request, Response, Status};

use super::pb::comment_filter_server::CommentFilter;
use super::{convert, pb};
use crate::app::{App, AppError, Caller, CheckInput, FeedbackInput, StatsQuery};

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
}
