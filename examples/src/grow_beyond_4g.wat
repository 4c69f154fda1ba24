;; grow_beyond_4g: asks memory.grow for 70,000 pages (more than any 32-bit
;; memory can have), then traps. The grow fails whatever the budget, so the
;; end is a trap, not a memory limit.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 70000)) (i32.const -1))
      (then unreachable))))
