//! The wasmtime engines. Every command builds them here, so what `compile`
//! writes is what `serve` can load.
//!
//! There are two, differing only in the component model's concurrency
//! support: the async ABI, streams and futures that WASI 0.3 needs. With it
//! on, wasmtime 48 keeps task bookkeeping around every host call, which cost
//! a WASI 0.2 request ~10 us of CPU (bench/RESULTS.md, 2026-12-05 15:50). So a
//! component runs on the engine without it when it can, and on the one with
//! it when it needs it. The setting is part of what compiled code must
//! match, so each engine has its own artifacts and its own pool.

use std::time::Duration;

use wasmtime::error::Context as _;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. At each tick a running guest yields to
/// tokio, which is how deadlines stop guests that never call the host.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Pool slots beyond the request instances, for instances the host makes
/// itself (such as a smoke test of a new component).
pub(crate) const RESERVED_SLOTS: u32 = 2;

/// How much of the machine the guests may use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EngineLimits {
    /// Request instances alive at once; the pool has this many slots plus [`RESERVED_SLOTS`].
    pub(crate) max_instances: u32,
    /// Largest linear memory of one instance, in bytes.
    pub(crate) max_memory_bytes: usize,
    /// Memory (and table) bytes a pool slot keeps resident between instances.
    pub(crate) keep_resident_bytes: usize,
    /// What one component may hold in its pool slot.
    pub(crate) per_component: ComponentLimits,
}

/// Core instances, tables and memories one component may hold in a pool slot.
///
/// A Rust wasi:http component has its main module plus a few small shim
/// modules; componentize-py's links CPython's modules and shims: 14 core
/// instances (measured on 0.25.1). The defaults leave room past both: they
/// cost only address space, reserved once, and every slot must fit any
/// served component, or admission could let in a request the pool cannot
/// hold. A component past one is refused when it loads, with the option
/// that raises it named ([`pool_limit_hint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ComponentLimits {
    pub(crate) core_instances: u32,
    pub(crate) tables: u32,
    pub(crate) memories: u32,
}

impl Default for ComponentLimits {
    fn default() -> Self {
        Self {
            core_instances: 32,
            tables: 32,
            memories: 4,
        }
    }
}

/// The serve options that raise each per-component limit, with the text of
/// wasmtime's refusal (`validate_component` in wasmtime 48's pooling
/// allocator, which gives no typed error) and, for the memory size, the
/// context its memory check adds.
const POOL_LIMITS: [(&str, &str); 4] = [
    (
        "core module instances, which exceeds the configured maximum",
        "--max-core-instances-per-component (WASM_HANDLER_MAX_CORE_INSTANCES_PER_COMPONENT)",
    ),
    (
        "linear memories, which exceeds the configured maximum",
        "--max-memories-per-component (WASM_HANDLER_MAX_MEMORIES_PER_COMPONENT)",
    ),
    (
        "tables, which exceeds the configured maximum",
        "--max-tables-per-component (WASM_HANDLER_MAX_TABLES_PER_COMPONENT)",
    ),
    (
        "module memory does not fit in pooling allocator requirements",
        "--max-memory (WASM_HANDLER_MAX_MEMORY)",
    ),
];

/// The option that raises the pool limit `error` (from loading a
/// component) says was exceeded, if it is one.
pub(crate) fn pool_limit_hint(error: &wasmtime::Error) -> Option<&'static str> {
    let text = format!("{error:#}");
    POOL_LIMITS
        .iter()
        .find(|(refusal, _)| text.contains(refusal))
        .map(|(_, option)| *option)
}

/// The default of [`EngineLimits::keep_resident_bytes`]. A slot is reset by
/// rewriting the pages resident in it, so it keeps every page any of its
/// guests touched up to this bound: the bound is each slot's share of RSS
/// and the most one reset copies. The catalog touches ~12 KiB of its memory
/// per request (smaps under load); with 1 MiB, the soak's fault guests
/// filled slot after slot and RSS rose ~11 MiB over its first 2 minutes.
pub(crate) const DEFAULT_KEEP_RESIDENT: &str = "256KiB";

/// Whether an engine has the component model's concurrency support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Concurrency {
    /// Without: WASI 0.2 components, whose host calls then skip the task
    /// bookkeeping. Components that use the async ABI fail to compile here.
    Off,
    /// With the async ABI, streams and futures: WASI 0.3 components, and any
    /// other that needs them.
    On,
}

impl Concurrency {
    /// The engines in the order a component is tried on them: the first one
    /// that compiles it runs it.
    pub(crate) const IN_ORDER: [Concurrency; 2] = [Concurrency::Off, Concurrency::On];
}

/// The host's two engines, one per [`Concurrency`].
pub(crate) struct Engines {
    without_concurrency: Engine,
    with_concurrency: Engine,
}

impl Engines {
    /// The engine with or without concurrency support.
    pub(crate) fn get(&self, concurrency: Concurrency) -> &Engine {
        match concurrency {
            Concurrency::Off => &self.without_concurrency,
            Concurrency::On => &self.with_concurrency,
        }
    }

    /// Both engines, in [`Concurrency::IN_ORDER`].
    pub(crate) fn in_order(&self) -> [(Concurrency, &Engine); 2] {
        Concurrency::IN_ORDER.map(|concurrency| (concurrency, self.get(concurrency)))
    }

    fn try_build(
        mut build: impl FnMut(Concurrency) -> wasmtime::Result<Engine>,
    ) -> wasmtime::Result<Self> {
        Ok(Self {
            without_concurrency: build(Concurrency::Off)?,
            with_concurrency: build(Concurrency::On)?,
        })
    }
}

/// The engine configuration shared by `serve` and `compile`.
pub(crate) fn config(limits: EngineLimits, pooling: bool, concurrency: Concurrency) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    match concurrency {
        Concurrency::Off => config.concurrency_support(false),
        Concurrency::On => config.wasm_component_model_async(true),
    };
    config.epoch_interruption(true);
    if pooling {
        // Instances come from pre-reserved slots: no mmap per request and
        // copy-on-write images stay mapped between requests of the same guest.
        // Each engine has a pool of its own, sized for every request instance
        // admission lets in: whichever engine the routes' components run on,
        // its pool never runs dry.
        let n = limits.max_instances + RESERVED_SLOTS;
        let per = limits.per_component;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(per.core_instances))
            .max_core_instances_per_component(per.core_instances)
            .total_tables(n.saturating_mul(per.tables))
            .max_tables_per_component(per.tables)
            .total_memories(n.saturating_mul(per.memories))
            .max_memories_per_component(per.memories)
            .total_stacks(n)
            .max_memory_size(limits.max_memory_bytes);
        // Reset a slot by rewriting what the last instance dirtied instead of
        // unmapping it: every unmap is a TLB shootdown across the host's
        // threads, which was most of the CPU time per request. Only pages a
        // guest touched stay resident.
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            // The kernel lists the resident pages (PAGEMAP_SCAN, Linux 6.7+):
            // those are rewritten, up to the bound, the rest unmapped.
            pool.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(limits.keep_resident_bytes)
                .table_keep_resident(limits.keep_resident_bytes);
        } else {
            // Without it the first bytes are rewritten every time, touched or
            // not: keep that small, and unmap the rest in batches, a
            // shootdown per batch.
            let keep_resident = limits.keep_resident_bytes.min(64 << 10);
            pool.linear_memory_keep_resident(keep_resident)
                .table_keep_resident(keep_resident)
                .decommit_batch_size(16);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Builds the engines, each with the pooling allocator when the machine can
/// reserve its address space (some kernels and containers cap virtual
/// memory), else with on-demand allocation and a warning, and starts their
/// epoch ticker.
pub(crate) fn build(limits: EngineLimits) -> wasmtime::Result<Engines> {
    let engines = Engines::try_build(|concurrency| build_engine(limits, concurrency))?;
    start_epoch_ticker(&engines);
    Ok(engines)
}

fn build_engine(limits: EngineLimits, concurrency: Concurrency) -> wasmtime::Result<Engine> {
    match Engine::new(&config(limits, true, concurrency)) {
        Ok(engine) => Ok(engine),
        Err(pooling_error) => {
            tracing::warn!(
                error = %format!("{pooling_error:#}"),
                ?concurrency,
                "The pooling allocator is unavailable; instances will be allocated on demand"
            );
            Engine::new(&config(limits, false, concurrency)).context("creating the wasmtime engine")
        }
    }
}

/// Which CPU features compiled code may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CpuFeatures {
    /// Every feature of this machine's CPU: the fastest code, for this machine
    /// or its exact kind (what `serve` itself compiles).
    Native,
    /// Only the architecture's baseline: runs on any CPU of this architecture,
    /// for a package built on one machine and run on others (Azure workers).
    Baseline,
}

/// Engines for `compile`: the configurations `serve` uses, whose compiled
/// code does not depend on the pool's sizes (checked by a test), without a
/// pool or an epoch ticker.
pub(crate) fn for_compiling(cpu: CpuFeatures) -> wasmtime::Result<Engines> {
    Engines::try_build(|concurrency| for_compiling_with(cpu, concurrency))
}

/// The engine for `compile` with or without concurrency support.
pub(crate) fn for_compiling_with(
    cpu: CpuFeatures,
    concurrency: Concurrency,
) -> wasmtime::Result<Engine> {
    let any_limits = EngineLimits {
        max_instances: 1,
        max_memory_bytes: 1 << 20,
        keep_resident_bytes: 0,
        per_component: ComponentLimits::default(),
    };
    let mut config = config(any_limits, false, concurrency);
    if cpu == CpuFeatures::Baseline {
        // Naming the target, even this host's, turns off CPU feature inference.
        // wasmtime still checks, when loading, that the CPU has what the code uses.
        config.target(&target_lexicon::HOST.to_string())?;
    }
    Engine::new(&config).context("creating the wasmtime engine")
}

/// Advances the engines' epochs every [`EPOCH_TICK`] on a thread of its own,
/// until the engines are dropped.
fn start_epoch_ticker(engines: &Engines) {
    let weak = engines.in_order().map(|(_, engine)| engine.weak());
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            loop {
                let mut alive = false;
                for engine in weak.iter().filter_map(|engine| engine.upgrade()) {
                    engine.increment_epoch();
                    alive = true;
                }
                if !alive {
                    return;
                }
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::engine_id;

    /// `compile` builds its engine without the pool's sizes: that is only
    /// right while they do not change what compiled code is compatible.
    #[test]
    fn pool_sizes_do_not_change_compiled_code() {
        for concurrency in Concurrency::IN_ORDER {
            pool_sizes_do_not_change_code_of(concurrency);
        }
    }

    fn pool_sizes_do_not_change_code_of(concurrency: Concurrency) {
        let compiling =
            engine_id(&for_compiling_with(CpuFeatures::Native, concurrency).expect("an engine"));
        let raised = ComponentLimits {
            core_instances: 200,
            tables: 100,
            memories: 16,
        };
        for (max_instances, max_memory_bytes, keep_resident_bytes, per_component) in [
            (1, 1 << 20, 0, ComponentLimits::default()),
            (256, 128 << 20, 256 << 10, raised),
            (1000, 4 << 30, 16 << 20, ComponentLimits::default()),
        ] {
            let limits = EngineLimits {
                max_instances,
                max_memory_bytes,
                keep_resident_bytes,
                per_component,
            };
            let serving =
                Engine::new(&config(limits, true, concurrency)).expect("a pooling engine");
            assert_eq!(engine_id(&serving), compiling, "{limits:?} {concurrency:?}");
        }
    }

    /// wasmtime's refusals, as its pooling allocator words them, each mapped
    /// to the option that raises that limit.
    #[test]
    fn each_pool_refusal_names_the_option_that_raises_it() {
        let refusals = [
            (
                "The component transitively contains 14 core module instances, which exceeds the configured maximum of 8 in the pooling allocator",
                "--max-core-instances-per-component",
            ),
            (
                "The component transitively contains 3 Wasm linear memories, which exceeds the configured maximum of 2 in the pooling allocator",
                "--max-memories-per-component",
            ),
            (
                "The component transitively contains 40 tables, which exceeds the configured maximum of 32 in the pooling allocator",
                "--max-tables-per-component",
            ),
        ];
        for (refusal, option) in refusals {
            let error = wasmtime::format_err!("{refusal}");
            assert!(
                pool_limit_hint(&error).is_some_and(|hint| hint.starts_with(option)),
                "{refusal}"
            );
        }
        let memory = wasmtime::format_err!("memory index 0 has a minimum page size of 4096")
            .context("module memory does not fit in pooling allocator requirements");
        assert!(pool_limit_hint(&memory).is_some_and(|hint| hint.starts_with("--max-memory ")));
        assert_eq!(
            pool_limit_hint(&wasmtime::format_err!("not a component")),
            None
        );
    }
}
