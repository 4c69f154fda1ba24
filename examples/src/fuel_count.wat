;; fuel_count: counts to 1000 and exits 0. Its fuel is known by hand, which
;; pins the metering rules (tests/metering_test.ts): the entry segment
;; [loop] costs 1; the loop body [local.get i32.const i32.add local.tee
;; i32.const i32.ne br_if end] costs 8 per pass; the tail [i32.const call end]
;; costs 3. Total 1 + 8 * 1000 + 3 = 8004.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (loop $again
      local.get $i
      i32.const 1
      i32.add
      local.tee $i
      i32.const 1000
      i32.ne
      br_if $again)
    i32.const 0
    call $exit))
