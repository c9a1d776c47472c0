//! Twin queries (`POST /devices/query`) with continuation paging.

use futures::{Stream, StreamExt, TryStreamExt, stream};
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::client::{Call, IotHubClient, parse_json};
use super::error::{ErrorKind, IotHubError};
use super::observer::Operation;

/// The service's limit on query text (reference §1.6).
pub const MAX_QUERY_CHARS: usize = 8192;

/// One page of query results.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage<T> {
    pub items: Vec<T>,
    /// Token for the next page; `None` on the last page.
    pub continuation: Option<String>,
    /// `x-ms-item-type`: `twin`, `deviceJob`, `jobResponse`, `raw` or `unknown`.
    pub item_type: Option<String>,
}

impl IotHubClient {
    /// Fetches one page: `continuation` is `None` for the first page, then the previous page's token.
    pub async fn query_page<T: DeserializeOwned>(
        &self,
        query: &str,
        continuation: Option<&str>,
    ) -> Result<QueryPage<T>, IotHubError> {
        let operation = Operation::Query;
        check_query(query)?;
        let mut headers = vec![("x-ms-max-item-count", self.page_size().to_string())];
        if let Some(token) = continuation {
            headers.push(("x-ms-continuation", token.to_owned()));
        }
        let call = Call {
            operation,
            method: Method::POST,
            path: "/devices/query".to_owned(),
            body: Some(serde_json::json!({ "query": query })),
            headers,
            timeout: None,
            device: "",
            module: None,
            retryable: IotHubError::is_transient,
        };
        let response = self.execute(&call).await?;
        self.report_billed(operation, 0, response.body.len() as u64);
        let header = |name: &str| {
            response
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let continuation_out = header("x-ms-continuation");
        if continuation_out.is_some() && continuation_out.as_deref() == continuation {
            return Err(IotHubError::new(
                ErrorKind::BadResponse,
                operation,
                "the hub returned the same continuation token again; stopping to avoid a loop",
            ));
        }
        Ok(QueryPage {
            items: parse_json(operation, &response.body)?,
            continuation: continuation_out,
            item_type: header("x-ms-item-type"),
        })
    }

    /// All pages of a query, following `x-ms-continuation` until the hub says there are no more.
    pub fn query_pages<T>(
        &self,
        query: impl Into<String>,
    ) -> impl Stream<Item = Result<QueryPage<T>, IotHubError>> + Send + 'static
    where
        T: DeserializeOwned + Send + 'static,
    {
        let client = self.clone();
        let query: String = query.into();
        // State: `Some(token)` = fetch the page after `token` (None = first page); `None` = done.
        stream::try_unfold(Some(None::<String>), move |state| {
            let client = client.clone();
            let query = query.clone();
            async move {
                let Some(continuation) = state else {
                    return Ok(None);
                };
                let page = client
                    .query_page::<T>(&query, continuation.as_deref())
                    .await?;
                let next = page.continuation.clone().map(Some);
                Ok(Some((page, next)))
            }
        })
    }

    /// All items of a query, page after page.
    pub fn query<T>(
        &self,
        query: impl Into<String>,
    ) -> impl Stream<Item = Result<T, IotHubError>> + Send + 'static
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.query_pages::<T>(query)
            .map_ok(|page| stream::iter(page.items.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }
}

fn check_query(query: &str) -> Result<(), IotHubError> {
    let problem = if query.trim().is_empty() {
        "the query text is empty".to_owned()
    } else if query.chars().count() > MAX_QUERY_CHARS {
        format!("the query text is longer than {MAX_QUERY_CHARS} characters")
    } else {
        return Ok(());
    };
    Err(IotHubError::new(
        ErrorKind::InvalidRequest,
        Operation::Query,
        problem,
    ))
}
