;; big_write: one fd_write of 1 MiB to stdout, then exit 0. The host's work
;; costs 1 MiB / 64 = 16384 fuel, so a budget of 100 must stop it in the
;; call, before the bytes are kept.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 17)
  ;; iovec at 0: buffer 65536, length 1 MiB (0x100000)
  (data (i32.const 0) "\00\00\01\00\00\00\10\00")
  (func (export "_start")
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
