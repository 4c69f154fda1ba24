;; sock_probe: calls sock_shutdown on stdin (fd 0) and exits with the errno it
;; got; a sandbox that returns ENOTSOCK (57) passes, one that traps fails.
(module
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $sock_shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $proc_exit (call $sock_shutdown (i32.const 0) (i32.const 1)))))
