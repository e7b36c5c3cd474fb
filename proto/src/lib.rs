//! The D-Bus contract between mossd and its clients (bus name, object paths, interfaces).

/// Well-known bus name of the daemon.
pub const BUS_NAME: &str = "com.serpentos.Moss1";
/// Object path of the daemon's root object.
pub const OBJECT_PATH: &str = "/com/serpentos/Moss1";
