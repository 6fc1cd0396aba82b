//! The hosting plan, as the Functions host tells it from its environment,
//! and the `functionTimeout` that follows from it.
//!
//! azure-functions-host at 89dc438 (4.1037):
//! `src/WebJobs.Script/Environment/EnvironmentExtensions.cs`
//! (`IsConsumptionSku`, `IsFlexConsumptionSku`, `IsWindowsConsumption`,
//! `IsLinuxConsumptionOnAtlas`, `IsLinuxConsumptionOnLegion`) and
//! `src/WebJobs.Script/Config/ScriptJobHostOptionsSetup.cs`
//! (`ConfigureFunctionTimeout`, `ValidateTimeoutValue`).

use std::time::Duration;

/// `functionTimeout` as `host.json` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionTimeoutSetting {
    /// Not set: the plan's default.
    Unset,
    /// `-1`: no limit, where the plan allows it.
    Unlimited,
    /// A time span.
    Limit(Duration),
}

/// The plan the app runs on, as far as `functionTimeout` cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostingPlan {
    /// Windows or Linux Consumption (`WEBSITE_SKU=Dynamic`, or a Linux
    /// Consumption container): 5 minutes by default, at most 10.
    Consumption,
    /// Flex Consumption (`WEBSITE_SKU=FlexConsumption`): 30 minutes by
    /// default, no upper bound, `-1` allowed.
    FlexConsumption,
    /// Premium, Dedicated, a container of one's own, or a developer's machine.
    Other,
}

/// Every environment variable [`HostingPlan::from_environment`] reads, for
/// tests that must not inherit the plan of the machine they run on (a
/// container sets `CONTAINER_NAME`, which the host reads as Linux
/// Consumption).
pub const PLAN_VARIABLES: [&str; 6] = [
    "WEBSITE_SKU",
    "WEBSITE_INSTANCE_ID",
    "CONTAINER_NAME",
    "WEBSITE_POD_NAME",
    "LEGION_SERVICE_HOST",
    "MANAGED_ENVIRONMENT",
];

/// The default timeout on Consumption.
const CONSUMPTION_DEFAULT: Duration = Duration::from_secs(5 * 60);
/// The longest timeout Consumption allows.
const CONSUMPTION_MAX: Duration = Duration::from_secs(10 * 60);
/// The default everywhere else.
const DEFAULT: Duration = Duration::from_secs(30 * 60);
/// The shortest timeout.
const MIN: Duration = Duration::from_secs(1);

impl HostingPlan {
    /// The plan from the environment variables the host reads (`lookup`
    /// returns a variable's value).
    pub fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| lookup(name).is_some_and(|value| !value.is_empty());
        let sku = lookup("WEBSITE_SKU").unwrap_or_default();
        let app_service = set("WEBSITE_INSTANCE_ID");
        let on_legion = !app_service
            && (set("CONTAINER_NAME") || set("WEBSITE_POD_NAME"))
            && set("LEGION_SERVICE_HOST");
        if sku.eq_ignore_ascii_case("FlexConsumption") || on_legion {
            return HostingPlan::FlexConsumption;
        }
        let on_atlas = !app_service && set("CONTAINER_NAME") && !set("LEGION_SERVICE_HOST");
        if sku.eq_ignore_ascii_case("Dynamic") || (on_atlas && !set("MANAGED_ENVIRONMENT")) {
            return HostingPlan::Consumption;
        }
        HostingPlan::Other
    }

    /// The plan of this process's environment.
    pub fn of_this_process() -> Self {
        Self::from_environment(|name| std::env::var(name).ok())
    }

    /// The timeout the host enforces for `setting` on this plan: `None` for
    /// no limit; an error, worded as the host's, when the host would refuse
    /// to start.
    pub fn function_timeout(
        self,
        setting: FunctionTimeoutSetting,
    ) -> Result<Option<Duration>, String> {
        let unbounded_allowed = self != HostingPlan::Consumption;
        let max = if unbounded_allowed {
            None
        } else {
            Some(CONSUMPTION_MAX)
        };
        let out_of_bounds = || {
            format!(
                "functionTimeout must be greater than {} and less than {}.",
                timespan(MIN),
                max.map_or_else(|| "10675199.02:48:05.4775807".to_owned(), timespan)
            )
        };
        match setting {
            FunctionTimeoutSetting::Unset => Ok(Some(match self {
                HostingPlan::Consumption => CONSUMPTION_DEFAULT,
                _ => DEFAULT,
            })),
            // -1 is minus one day: out of bounds where it does not mean "no limit".
            FunctionTimeoutSetting::Unlimited if unbounded_allowed => Ok(None),
            FunctionTimeoutSetting::Unlimited => Err(out_of_bounds()),
            FunctionTimeoutSetting::Limit(limit)
                if limit < MIN || max.is_some_and(|max| limit > max) =>
            {
                Err(out_of_bounds())
            }
            FunctionTimeoutSetting::Limit(limit) => Ok(Some(limit)),
        }
    }
}

/// A duration as .NET prints a `TimeSpan`: `hh:mm:ss`, with days in front
/// when there are any.
pub fn timespan(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let clock = format!(
        "{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    let fraction = duration.subsec_nanos() / 100;
    let clock = if fraction > 0 {
        format!("{clock}.{fraction:07}")
    } else {
        clock
    };
    if days > 0 {
        format!("{days}.{clock}")
    } else {
        clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(variables: &[(&str, &str)]) -> HostingPlan {
        HostingPlan::from_environment(|name| {
            variables
                .iter()
                .find(|(set, _)| *set == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn the_plan_comes_from_the_hosts_variables() {
        assert_eq!(plan(&[]), HostingPlan::Other);
        assert_eq!(
            plan(&[("WEBSITE_SKU", "dynamic")]),
            HostingPlan::Consumption
        );
        assert_eq!(
            plan(&[("WEBSITE_SKU", "FlexConsumption")]),
            HostingPlan::FlexConsumption
        );
        assert_eq!(plan(&[("CONTAINER_NAME", "c")]), HostingPlan::Consumption);
        assert_eq!(
            plan(&[("CONTAINER_NAME", "c"), ("LEGION_SERVICE_HOST", "l")]),
            HostingPlan::FlexConsumption
        );
        assert_eq!(
            plan(&[("CONTAINER_NAME", "c"), ("WEBSITE_INSTANCE_ID", "i")]),
            HostingPlan::Other,
            "App Service, not a Consumption container"
        );
        assert_eq!(
            plan(&[("WEBSITE_SKU", "ElasticPremium")]),
            HostingPlan::Other
        );
    }

    #[test]
    fn defaults_and_limits_follow_the_plan() {
        use FunctionTimeoutSetting::*;
        let minutes = |n: u64| Duration::from_secs(n * 60);
        assert_eq!(
            HostingPlan::Consumption.function_timeout(Unset),
            Ok(Some(minutes(5)))
        );
        assert_eq!(
            HostingPlan::FlexConsumption.function_timeout(Unset),
            Ok(Some(minutes(30)))
        );
        assert_eq!(
            HostingPlan::Other.function_timeout(Unset),
            Ok(Some(minutes(30)))
        );
        assert_eq!(HostingPlan::Other.function_timeout(Unlimited), Ok(None));
        assert_eq!(
            HostingPlan::FlexConsumption.function_timeout(Unlimited),
            Ok(None)
        );
        assert_eq!(
            HostingPlan::Consumption.function_timeout(Unlimited),
            Err("functionTimeout must be greater than 00:00:01 and less than 00:10:00.".into())
        );
        assert!(
            HostingPlan::Consumption
                .function_timeout(Limit(minutes(11)))
                .is_err()
        );
        assert_eq!(
            HostingPlan::FlexConsumption.function_timeout(Limit(minutes(60))),
            Ok(Some(minutes(60)))
        );
        assert!(
            HostingPlan::Other
                .function_timeout(Limit(Duration::from_millis(500)))
                .is_err()
        );
    }

    #[test]
    fn durations_print_as_timespans() {
        assert_eq!(timespan(Duration::from_secs(600)), "00:10:00");
        assert_eq!(timespan(Duration::from_secs(90_061)), "1.01:01:01");
        assert_eq!(timespan(Duration::from_millis(1500)), "00:00:01.5000000");
    }
}
