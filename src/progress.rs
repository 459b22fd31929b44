//! The progress bar of the commands run by hand (`process`, `import`,
//! `reprocess`): on stderr, only when it is a terminal. The Lambda build
//! leaves the `local` feature out, and with it indicatif; there `Bar` can
//! never be made, and the commands print their JSON lines as they do
//! when piped.

/// A progress bar on stderr.
pub struct Bar(Inner);

#[cfg(feature = "local")]
type Inner = indicatif::ProgressBar;
#[cfg(not(feature = "local"))]
type Inner = std::convert::Infallible;

#[cfg(feature = "local")]
impl Bar {
    /// A bar for `len` items when stderr is a terminal, else `None`.
    pub fn on_terminal(len: usize) -> Option<Bar> {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(len as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Bar(bar)
        })
    }

    /// One more item done, named `name`.
    pub fn done(&self, name: &str) {
        self.0.set_message(name.to_string());
        self.0.inc(1);
    }

    /// A line printed above the bar.
    pub fn println(&self, line: String) {
        self.0.println(line);
    }

    /// Run `f` (which prints) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.suspend(f)
    }

    pub fn finish(self) {
        self.0.finish_and_clear();
    }
}

#[cfg(not(feature = "local"))]
impl Bar {
    pub fn on_terminal(_: usize) -> Option<Bar> {
        None
    }

    pub fn done(&self, _: &str) {
        match self.0 {}
    }

    pub fn println(&self, _: String) {
        match self.0 {}
    }

    pub fn suspend<R>(&self, _: impl FnOnce() -> R) -> R {
        match self.0 {}
    }

    pub fn finish(self) {
        match self.0 {}
    }
}
