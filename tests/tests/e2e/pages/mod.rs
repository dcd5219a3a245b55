//! The HTML pages: connect outcomes, the admin console, hosted user settings.

mod connect;
mod console;
mod settings;
