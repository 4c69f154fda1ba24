;; wrong_signature: imports fd_write with one parameter instead of four.
;; V8 links it (the shim's function takes any arguments), so only Phase's
;; link check stops it.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $write (i32.const 1)))))
