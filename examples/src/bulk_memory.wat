;; bulk_memory: one memory.fill of 1 MiB and one memory.copy of 64 KiB, then
;; exit 0. Hand-counted fuel (tests/metering_test.ts): 11 instructions in one
;; segment, plus 1 fuel per 64 bytes: 1048576 / 64 + 65536 / 64 = 17408.
;; Total 17419.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 17)
  (func (export "_start")
    i32.const 0
    i32.const 7
    i32.const 1048576
    memory.fill
    i32.const 0
    i32.const 65536
    i32.const 65536
    memory.copy
    i32.const 0
    call $exit))
