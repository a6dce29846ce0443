//! The OPFS pools this worker installed as SQLite VFSes, by name.

use crate::to_js;
use quiver::{Code, Error};
use sqlite_wasm_vfs::sahpool::{install, OpfsSAHPoolCfgBuilder, OpfsSAHPoolUtil};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

thread_local! {
    /// The OPFS pools this worker has installed, by VFS name.
    static OPFS_POOLS: RefCell<HashMap<String, OpfsSAHPoolUtil>> = Default::default();
}

/// Installs an OPFS pool of files as the SQLite VFS `vfs`, kept in the OPFS directory
/// `directory` (one worker a directory: the pool holds its files exclusively).
#[wasm_bindgen(js_name = installOpfs)]
pub async fn install_opfs(vfs: String, directory: String) -> Result<(), JsValue> {
    let cfg = OpfsSAHPoolCfgBuilder::new()
        .vfs_name(&vfs)
        .directory(&directory)
        .build();
    let pool = install::<sqlite_wasm_rs::WasmOsCallback>(&cfg, false)
        .await
        .map_err(|e| {
            to_js(Error::new(
                Code::Storage,
                format!("storage: OPFS is not available here: {e}"),
            ))
        })?;
    OPFS_POOLS.with(|p| p.borrow_mut().insert(vfs, pool));
    Ok(())
}

/// Lets go of the OPFS files of the pool installed as `vfs`, so that another worker
/// can open them at once (a worker's handles are otherwise freed only some time after
/// it ends). Every database opened through it must be closed first.
#[wasm_bindgen(js_name = uninstallOpfs)]
pub fn uninstall_opfs(vfs: &str) -> Result<(), JsValue> {
    let Some(pool) = OPFS_POOLS.with(|p| p.borrow_mut().remove(vfs)) else {
        return Ok(());
    };
    // SAFETY: the worker calls this only after closing the database that used the VFS.
    unsafe { pool.uninstall() }.map_err(|e| to_js(Error::new(Code::Storage, format!("storage: {e}"))))
}
