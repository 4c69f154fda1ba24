;; unknown_import: imports a function WASI preview1 does not have.
(module
  (import "wasi_snapshot_preview1" "fd_frobnicate" (func $f (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $f (i32.const 0)))))
