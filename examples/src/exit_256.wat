;; exit_256: proc_exit(256). A shell keeps 8 bits of an exit status, so
;; 256 would read as success; Phase exits 255 instead (the receipt keeps 256).
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 256))))
