'use strict';
// Where bin/pgark.js keeps Node's compile cache (V8 code cache of pgark's modules), and whether
// that place is safe to trust. Builtins only; runs on every call, before anything else loads.
const { lstatSync, mkdirSync } = require('node:fs');
const { dirname, isAbsolute, join } = require('node:path');

/** `$XDG_CACHE_HOME/pgark/compile-cache`, else `$HOME/.cache/pgark/compile-cache`; undefined without either. */
function compileCacheDirOf(env) {
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)
    ? env.XDG_CACHE_HOME
    : env.HOME && isAbsolute(env.HOME) ? join(env.HOME, '.cache') : undefined;
  return base === undefined ? undefined : join(base, 'pgark', 'compile-cache');
}

/**
 * True when `dir` and every directory above it is a directory (not a symlink) owned by `uid` or
 * root that no other user can write to, sticky directories such as /tmp excepted (others cannot
 * rename or remove what is in them). Anyone who could write there could plant code cache.
 */
function isTrustedDir(dir, uid, lstat = lstatSync) {
  for (let d = dir; ; d = dirname(d)) {
    const st = lstat(d);
    if (!st.isDirectory()) return false;
    if (st.uid !== uid && st.uid !== 0) return false;
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) return false;
    if (dirname(d) === d) return true;
  }
}

/**
 * Enables the compile cache in the user's trusted cache directory (created 0700), or in
 * NODE_COMPILE_CACHE when that is set; does nothing when neither works (pgark only starts slower).
 * Returns the directory in use, or undefined.
 */
function enableCompileCache(env = process.env) {
  try {
    const mod = require('node:module');
    if (typeof mod.enableCompileCache !== 'function' || env.NODE_DISABLE_COMPILE_CACHE) return undefined;
    if (env.NODE_COMPILE_CACHE) return mod.getCompileCacheDir();
    const dir = compileCacheDirOf(env);
    if (dir === undefined) return undefined;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!isTrustedDir(dir, process.getuid())) return undefined;
    return mod.enableCompileCache(dir).directory;
  } catch {
    return undefined;
  }
}

module.exports = { compileCacheDirOf, isTrustedDir, enableCompileCache };
