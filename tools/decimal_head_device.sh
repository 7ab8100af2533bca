#!/usr/bin/env bash
# The decimal-head study's runs on a lent GPU machine (issue 18), as sent there in one call (its body is the
# `run` command; OUT is the folder that comes back). From the repository root there:
#   * the oracle grid at the issue's size (300 steps of 16 faces x 98 landmarks, head width 64): 33 runs,
#     heatmaps 64, 32, 16, both heads, every spread + the "class" control, 8 CPU processes of 1 thread;
#   * trained runs at heatmap 64 -> decimal 8, released recipe, 4000 steps of batch 8, 128 px, 25 landmarks:
#     trunks width 32 x 1 stack and width 64 x 2 stacks, spreads demo and aligned, heads hih and hih_local,
#     8 processes side by side on the GPU, each followed by its feature probe;
#   -> OUT/r.tgz: r/<run key>.json, r/oracle.jsonl and the logs (committed as figures/decimal_head/runs/).
# Measured 2026-12-04 on one H200 machine: 318 s in all; trained runs 207-212 s (width 32) and 274-284 s
# (2 x 64) for 4000 steps with 8 runs sharing the GPU; oracle runs 112-123 s (global head) and 193-217 s
# (hih_local) at 64 -> 8. Then: python -m hihlib.studies.decimal_study --out figures/decimal_head --reuse-oracle
#   --oracle figures/decimal_head/runs/oracle.jsonl --trained figures/decimal_head/runs
# S (steps), OS (oracle steps), DEV (device), NT (training faces), OJ (oracle jobs), NP (oracle processes),
# OT (oracle time limit) shrink it for a smoke run on a CPU.
M=hihlib.studies.decimal_study
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 M T0=$(date +%s) S=${S:-4000} DEV=${DEV:-cuda} OS=${OS:-300}
L=/tmp/r;mkdir -p $L;echo $M;nvidia-smi -L;nproc
cat >/tmp/t.py<<'E'
import os,sys,json,time,importlib,torch
D=importlib.import_module(os.environ['M']);torch.set_num_threads(1)
h,s,w,n=sys.argv[1:];v=os.environ.get
r=D.TrainedRun(head=h,spread=s,width=int(w),num_stacks=int(n),steps=int(v('S')),num_train=int(v('NT',3000)))
d=D.make_faces(r);t=time.time()
row,m,c=D.train_run(r,d,device=v('DEV'),stop_at=int(v('T0'))+430,log=lambda s:print(s,flush=True))
row.update(device=v('DEV'),wall_s=time.time()-t);f='/tmp/r/'+r.key()+'.json'
json.dump(row,open(f,'w'))
row.update({'probe_r2_'+k:x for k,x in D.feature_probe(m,c,r,*d).items()})
json.dump(row,open(f,'w'));print('done',time.time()-t)
E
cat >/tmp/o.py<<'E'
import os,json,time,torch,importlib
from multiprocessing import Pool
D=importlib.import_module(os.environ['M']);v=os.environ.get
def f(a):
 torch.set_num_threads(1);t=time.time()
 r=D.oracle_run(a[0],a[1],spread=a[2],mode=a[3],steps=int(v('OS')),batch=16,num_landmarks=98,channels=64)
 r['seconds']=time.time()-t;print(r,flush=True);return r
J=[(h,m,s,'cell') for m in (64,32,16) for h in (D.global_head(m),'hih_local') for s in D.SPREADS]
J=[(D.global_head(m),m,1.0,'class') for m in (64,32,16)]+J[:int(v('OJ',99))]
with Pool(int(v('NP',8))) as p:
 for r in p.imap_unordered(f,sorted(J,key=lambda a:-a[1])):open('/tmp/r/oracle.jsonl','a').write(json.dumps(r)+'\n')
E
timeout ${OT:-500} python3 /tmp/o.py >$L/oracle.log 2>&1 &
for c in "32 1" "64 2";do for s in demo aligned;do for h in hih hih_local;do python3 /tmp/t.py $h $s $c >$L/${h}_${s}_${c/ /_}.log 2>&1 & done;done;done
wait;tar czf $OUT/r.tgz -C /tmp r;ls -la $L;tail -qn 1 $L/*.log
