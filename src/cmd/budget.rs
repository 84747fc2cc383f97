use anyhow::Result;
use serde_json::json;

use crate::app::App;
use crate::cli::{BudgetArgs, GlobalArgs};
use crate::error::invalid;
use crate::workflow::supervise;

use super::{print_json, Run};

/// `none`, `off` or `default` removes the ticket's own budget; else an amount in USD.
pub(crate) fn parse_usd(text: &str) -> Result<Option<f64>> {
    let t = text.trim().trim_start_matches('$');
    if matches!(t.to_ascii_lowercase().as_str(), "none" | "off" | "default") {
        return Ok(None);
    }
    let usd: f64 = t.parse().map_err(|_| {
        invalid(format!(
            "{text:?} is not an amount of USD: give one such as 10 or 12.50, or `none`"
        ))
    })?;
    supervise::valid_budget(usd).map(Some)
}

impl Run for BudgetArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let usd = parse_usd(&self.usd)?;
        let app = App::load(global.config.as_deref())?;
        let activity = supervise::set_budget(&app, &self.id, usd)?;
        let budget = usd.or(app.config.automation.budget_usd);
        let cost = activity.as_ref().map(|a| a.cost(&app.config.prices));
        if self.json {
            return print_json(&json!({
                "ticket_id": self.id.to_string(),
                "budget_usd": budget,
                "activity": activity,
                "cost": cost,
            }));
        }
        let spent = cost.map_or(0.0, |c| c.spent_usd);
        match budget {
            Some(b) => println!("{}: budget ${b:.2} (${spent:.2} spent)", self.id),
            None => println!("{}: no budget (${spent:.2} spent)", self.id),
        }
        if activity
            .as_ref()
            .is_some_and(crate::activity::Activity::budget_hold)
        {
            println!(
                "{} still waits: the budget is used up. Raise it above ${spent:.2}.",
                self.id
            );
        }
        Ok(())
    }
}
