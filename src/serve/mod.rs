//! The playground: a local web server (axum on tokio) where every trained model answers an input of one's own,
//! side by side by cell, with why — the belief after each letter, P(positive) after each word and each word's
//! saliency, tags with disagreements marked, attention, and generated text coloured by one hidden unit.
//!
//! One page ([`PAGE`], shipped inside the binary) and a JSON API (README, "Playground"): `GET /api/runs`, `POST
//! /api/names`, `/api/sentiment`, `/api/tags`, `/api/seq2seq`, `/api/generate`. Bad input gets a 4xx with
//! `{"error": "..."}`; a model that fails answers with its error beside the others; the server keeps serving.
pub mod catalog;

use crate::experiments::generate::commands::SampleArgs;
use crate::experiments::names::{ranked, Prior};
use crate::model::lm::Pick;
use anyhow::Result;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
pub use catalog::{Catalog, Entry, Panel, Predictor};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The page: HTML, CSS and JavaScript in one file, nothing fetched from elsewhere.
pub const PAGE: &str = include_str!("page.html");

/// Longest inputs accepted, in characters.
pub const MAX_NAME: usize = 40;
pub const MAX_SENTENCE: usize = 1_000;
pub const MAX_REVIEW: usize = 10_000;
/// Most names, characters and samples one generate request may ask for.
pub const MAX_GENERATE: usize = 2_000;

/// An answer the page shows as an error: a status and a message.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, msg.into())
}

type Answer = std::result::Result<Json<Value>, ApiError>;

/// A JSON body of type `T`, or a 400 naming what is wrong with it.
fn parse<T: DeserializeOwned>(body: &Bytes) -> std::result::Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError(StatusCode::BAD_REQUEST, format!("the request is not valid JSON of the expected shape: {e}"))
    })
}

/// `text` trimmed, refused when empty or longer than `max` characters (`what` names it in the message).
fn text<'a>(text: &'a str, max: usize, what: &str) -> std::result::Result<&'a str, ApiError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(bad(format!("type {what} first")));
    }
    let n = t.chars().count();
    if n > max {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} has {n} characters; at most {max} are read"),
        ));
    }
    Ok(t)
}

/// Runs `f` on every model of `panel` in a blocking thread, each answer or its error beside the model's info;
/// a panic inside a model becomes that model's error. When every model refuses the input, the first refusal is
/// the answer (422).
async fn each<F>(cat: Arc<Catalog>, panel: Panel, f: F) -> std::result::Result<Vec<Value>, ApiError>
where
    F: Fn(&catalog::Info, &Predictor) -> Result<Value> + Send + 'static,
{
    let task = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for e in cat.of(panel) {
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let model = e.model.lock().unwrap_or_else(|p| p.into_inner());
                f(&e.info, &model)
            }))
            .unwrap_or_else(|p| Err(anyhow::anyhow!("the model failed: {}", panic_message(&p))));
            out.push((serde_json::to_value(&e.info).unwrap_or(Value::Null), answer));
        }
        out
    });
    let results = task.await.map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if results.is_empty() {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no trained {panel:?} model: run {}", panel.make())));
    }
    if results.iter().all(|(_, a)| a.is_err()) {
        let (_, first) = results.into_iter().next().expect("not empty");
        return Err(bad(format!("{:#}", first.expect_err("all errors"))));
    }
    Ok(results
        .into_iter()
        .map(|(info, a)| match a {
            Ok(v) => json!({ "model": info, "answer": v }),
            Err(e) => json!({ "model": info, "error": format!("{e:#}") }),
        })
        .collect())
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

async fn runs(State(cat): State<Arc<Catalog>>) -> Json<Value> {
    let panels: Vec<Value> = Panel::ALL
        .iter()
        .map(|&p| {
            let models: Vec<_> = cat.of(p).map(|e| &e.info).collect();
            json!({ "panel": p, "models": models, "train": p.make() })
        })
        .collect();
    Json(json!({ "results": cat.root.display().to_string(), "panels": panels, "skipped": cat.skipped }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamesReq {
    text: String,
    #[serde(default)]
    prior: Option<String>,
    #[serde(default)]
    top: Option<usize>,
}

async fn names(State(cat): State<Arc<Catalog>>, body: Bytes) -> Answer {
    let r: NamesReq = parse(&body)?;
    let name = text(&r.text, MAX_NAME, "a surname")?.to_string();
    let prior = match r.prior.as_deref().unwrap_or("uniform") {
        "uniform" => Prior::Uniform,
        "data" => Prior::Data,
        "model" => Prior::Model,
        other => return Err(bad(format!("prior {other:?}: expected uniform, data or model"))),
    };
    let top = r.top.unwrap_or(5).clamp(1, 20);
    let models = each(cat, Panel::Names, move |_, m| {
        let Predictor::Names(m) = m else { unreachable!() };
        let p = &m.probs(std::slice::from_ref(&name), prior)?[0];
        let classes = m.classes();
        let top: Vec<Value> = ranked(p).iter().take(top).map(|&c| json!({ "language": classes[c], "p": p[c] })).collect();
        let belief = m.belief(&name, prior)?;
        Ok(json!({ "top": top, "letters": name.chars().map(String::from).collect::<Vec<_>>(), "languages": classes, "belief": belief }))
    })
    .await?;
    Ok(Json(json!({ "models": models })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextReq {
    text: String,
    #[serde(default)]
    beam: Option<usize>,
    #[serde(default)]
    task: Option<String>,
}

async fn sentiment(State(cat): State<Arc<Catalog>>, body: Bytes) -> Answer {
    let r: TextReq = parse(&body)?;
    let review = text(&r.text, MAX_REVIEW, "a review")?.to_string();
    let models = each(cat, Panel::Sentiment, move |_, m| {
        let Predictor::Sentiment(m) = m else { unreachable!() };
        Ok(serde_json::to_value(m.read(&review)?)?)
    })
    .await?;
    Ok(Json(json!({ "models": models })))
}

async fn tags(State(cat): State<Arc<Catalog>>, body: Bytes) -> Answer {
    let r: TextReq = parse(&body)?;
    let sentence = text(&r.text, MAX_SENTENCE, "a sentence")?.to_string();
    let models = each(cat, Panel::Tags, move |_, m| {
        let Predictor::Tags(m) = m else { unreachable!() };
        Ok(serde_json::to_value(m.tag(&sentence)?)?)
    })
    .await?;
    Ok(Json(json!({ "models": models })))
}

async fn seq2seq(State(cat): State<Arc<Catalog>>, body: Bytes) -> Answer {
    let r: TextReq = parse(&body)?;
    let input = text(&r.text, MAX_SENTENCE, "an input")?.to_string();
    let beam = r.beam.map(|b| b.clamp(1, 10));
    let tasks: Vec<String> = cat.of(Panel::Seq2seq).map(|e| e.info.task.clone()).collect();
    let task = r.task.unwrap_or_else(|| tasks.first().cloned().unwrap_or_default());
    if !tasks.is_empty() && !tasks.contains(&task) {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no trained {task:?} model (have: {})", tasks.join(", "))));
    }
    let models = each(cat, Panel::Seq2seq, move |_, m| {
        let Predictor::Seq2seq(m) = m else { unreachable!() };
        if format!("{:?}", m.data.task).to_lowercase() != task {
            return Ok(Value::Null);
        }
        Ok(serde_json::to_value(m.answer(&input, beam)?)?)
    })
    .await?;
    let models: Vec<Value> = models.into_iter().filter(|m| !m.get("answer").is_some_and(Value::is_null)).collect();
    Ok(Json(json!({ "models": models })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateReq {
    /// names: one of the names runs' languages; text: leave out.
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    start: String,
    #[serde(default)]
    temperature: Option<f64>,
    /// Names to write, or characters after the start.
    #[serde(default)]
    count: Option<usize>,
    #[serde(default)]
    seed: Option<u64>,
    /// Text runs: `layer:state:unit` to colour each character by (default: the run's first interpretable unit).
    #[serde(default)]
    unit: Option<String>,
}

async fn generate(State(cat): State<Arc<Catalog>>, body: Bytes) -> Answer {
    let r: GenerateReq = parse(&body)?;
    let temperature = r.temperature.unwrap_or(0.8);
    if !(temperature.is_finite() && (0.05..=5.0).contains(&temperature)) {
        return Err(bad(format!("temperature {temperature}: expected a number in [0.05, 5]")));
    }
    let names = r.language.is_some();
    let count = r.count.unwrap_or(if names { 8 } else { 300 });
    if count == 0 || count > MAX_GENERATE {
        return Err(bad(format!("count {count}: expected 1 to {MAX_GENERATE}")));
    }
    if r.start.chars().count() > MAX_SENTENCE {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the start has more than {MAX_SENTENCE} characters"),
        ));
    }
    let unit = match &r.unit {
        None => None,
        Some(u) => {
            Some(parse_unit(u).ok_or_else(|| bad(format!("unit {u:?}: expected layer:state:unit, e.g. 1:h:17")))?)
        }
    };
    let models = each(cat, Panel::Generate, move |info, m| {
        let Predictor::Generate(g) = m else { unreachable!() };
        let is_names = !g.languages().is_empty();
        if is_names != names {
            return Ok(Value::Null);
        }
        let how = Pick::Sample { temperature, top_k: None };
        let args =
            SampleArgs { language: r.language.as_deref(), start: &r.start, how, count, seed: r.seed.unwrap_or(0) };
        let out = g.sample(&args)?;
        if names {
            return Ok(json!({ "names": out.lines().collect::<Vec<_>>() }));
        }
        let text = out.trim_end_matches('\n').to_string();
        let states = g.states(&text)?;
        // By default each model's most interpretable unit (what its experiment found), else the first.
        let own = info.units.first().and_then(|(u, _)| parse_unit(u));
        let (layer, state, k) = unit.clone().or(own).unwrap_or((1, "h".into(), 0));
        let Some((_, _, v)) = states.iter().find(|(l, s, _)| *l == layer && *s == state) else {
            anyhow::bail!("this model has no layer {layer} state {state} (layers: {})", states.len());
        };
        let values: Vec<f64> = v.iter().map(|row| row.get(k).copied().unwrap_or(f64::NAN)).collect();
        if values.iter().any(|x| x.is_nan()) {
            anyhow::bail!("unit {k} is beyond this model's {} units", v.first().map_or(0, Vec::len));
        }
        Ok(json!({ "text": text, "unit": format!("{layer}:{state}:{k}"), "values": values }))
    })
    .await?;
    let models: Vec<Value> = models.into_iter().filter(|m| !m.get("answer").is_some_and(Value::is_null)).collect();
    if models.is_empty() {
        let what = if names { "names" } else { "text" };
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no trained {what} language model: run {}", Panel::Generate.make()),
        ));
    }
    Ok(Json(json!({ "models": models })))
}

fn parse_unit(u: &str) -> Option<(usize, String, usize)> {
    let mut p = u.split(':');
    let (l, s, k) = (p.next()?.parse().ok()?, p.next()?, p.next()?.parse().ok()?);
    (p.next().is_none() && (s == "h" || s == "c") && l >= 1).then(|| (l, s.to_string(), k))
}

async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE))
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such page: the API is under /api (GET /api/runs lists the models)".into())
}

/// The playground's routes over `catalog`.
pub fn router(catalog: Arc<Catalog>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/runs", get(runs))
        .route("/api/names", post(names))
        .route("/api/sentiment", post(sentiment))
        .route("/api/tags", post(tags))
        .route("/api/seq2seq", post(seq2seq))
        .route("/api/generate", post(generate))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(256 * 1024))
        .with_state(catalog)
}

/// Serves `catalog` on `listener` until Ctrl-C.
pub async fn serve(listener: tokio::net::TcpListener, catalog: Arc<Catalog>) -> Result<()> {
    axum::serve(listener, router(catalog))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
