;; table_bomb: 149 bytes that ask for 16 tables of 10 million entries each
;; (about 3.8 GB of host memory in V8 if nothing charges them). Phase fixes
;; tables at their declared size and charges each entry to the job's memory
;; budget, so this module is refused before it runs.
(module
  (memory (export "memory") 1)
  (table 10000000 funcref) (table 10000000 funcref) (table 10000000 funcref)
  (table 10000000 funcref) (table 10000000 funcref) (table 10000000 funcref)
  (table 10000000 funcref) (table 10000000 funcref) (table 10000000 funcref)
  (table 10000000 funcref) (table 10000000 funcref) (table 10000000 funcref)
  (table 10000000 funcref) (table 10000000 funcref) (table 10000000 funcref)
  (table 10000000 funcref)
  (func (export "_start")))
