//! Function apps in temporary folders: the repository's `functionapp/`
//! with the real `wasm-handler` and a component copied in, as the
//! Functions host finds them.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A function app in a fresh folder under the system's temporary directory,
/// removed when dropped.
pub struct TempApp {
    /// The app folder.
    pub root: PathBuf,
}

impl TempApp {
    /// An empty app folder.
    pub fn empty(name: &str) -> Self {
        let root = std::env::temp_dir()
            .join("wasm-handler-tests")
            .join(format!("{name}-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(&root).expect("creating the app folder");
        TempApp { root }
    }

    /// A copy of the repository's `functionapp/` with the real `wasm-handler`
    /// binary and `component` (a path from `test_harness::guests`) copied
    /// in as `catalog.wasm`, the file its host.json names.
    pub fn function_app(name: &str, component: &str) -> Self {
        let app = TempApp::empty(name);
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../functionapp"),
            &app.root,
        );
        std::fs::copy(
            crate::current_binary("wasm-handler"),
            app.root.join("wasm-handler"),
        )
        .expect("copying wasm-handler");
        std::fs::copy(component, app.root.join("catalog.wasm")).expect("copying the component");
        app
    }

    /// Writes `contents` to `relative`, creating folders.
    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating a folder");
        }
        std::fs::write(path, contents).expect("writing a file");
    }

    /// Writes an executable shell script.
    pub fn write_script(&self, relative: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        self.write(relative, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(
            self.root.join(relative),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("making the script executable");
    }

    /// A file's contents.
    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.root.join(relative))
            .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
    }

    /// Waits until `relative` exists and has at least `lines` lines; returns them.
    pub async fn wait_for_lines(&self, relative: &str, lines: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + crate::http::REQUEST_TIMEOUT;
        loop {
            let found: Vec<String> = std::fs::read_to_string(self.root.join(relative))
                .map(|text| text.lines().map(str::to_owned).collect())
                .unwrap_or_default();
            if found.len() >= lines {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{relative} has {} of {lines} lines",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TempApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("reading functionapp/") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            std::fs::create_dir_all(&target).expect("creating a folder");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copying a file");
        }
    }
}
