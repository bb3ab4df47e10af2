//! `status`: per homeserver its as_token's state, per tenant its homeserver and bot, whether the
//! bot is registered, the job queue and its dead jobs with their last error — from the database and the homeserver directly, so it
//! works while the daemon is down. `--json` prints what `GET /v1/status` answers.

use std::sync::Arc;

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::status::{self, HomeserverView};
use crate::store::unix_ms;

pub fn run(config: Config, json: bool) -> anyhow::Result<()> {
    let app = App::new(config, Arc::new(SystemClock))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let status = runtime.block_on(async {
        let (homeserver, problems) = HomeserverView::check(&app).await;
        for problem in problems {
            eprintln!("{problem}");
        }
        status::collect(&app, &homeserver).await
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", status.to_table(unix_ms(std::time::SystemTime::now())));
    }
    Ok(())
}
