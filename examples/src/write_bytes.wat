;; write_bytes: one fd_write of 6400 bytes to stdout, then exit with its
;; errno. Hand-counted fuel (tests/metering_test.ts): 7 instructions
;; (4 consts, 2 calls, end) plus 6400 / 64 = 100 for the host's work: 107.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: buffer 16, length 6400 (0x1900)
  (data (i32.const 0) "\10\00\00\00\00\19\00\00")
  (func (export "_start")
    i32.const 1
    i32.const 0
    i32.const 1
    i32.const 8
    call $write
    call $exit))
