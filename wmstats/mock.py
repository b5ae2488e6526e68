"""Deterministic mock data: WMCore-shaped documents and their static records.

:class:`MockGenerator` invents a production-like population of workflows
(request statuses, types, campaigns, ~100 CMS sites, 1-3 agents per running
workflow, multi-task chains, CMSSW releases) and renders each one two ways:

* as the **dynamic** documents WMCore stores in CouchDB: the ReqMgr2 request,
  one ``agent_request`` per agent, and one ``agent_info`` per agent
  (:meth:`MockGenerator.documents`, :meth:`MockGenerator.iter_documents`);
* as the **static** records of :mod:`wmstats.schema`
  (:meth:`MockGenerator.bundle`, :meth:`MockGenerator.bundles`).

Both renderings come from one neutral description of the workflow (a private
"truth"), built from a random generator seeded by ``(seed, index)`` alone, so
workflow ``i`` can be made without making the others: random access, and
constant memory when streaming a million workflows.  The static rendering is
computed here, independently of :mod:`wmstats.convert`; converting the dynamic
documents gives exactly the static records (the test suite checks it)::

    gen = MockGenerator(seed=7)
    for doc in gen.iter_documents(100_000):   # agent_info docs, then per workflow
        ...
    for bundle in gen.bundles(100_000):       # WorkflowBundle per workflow
        ...
"""

from __future__ import annotations

import bisect
import heapq
import math
import operator
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from wmstats.schema import (
    COUNTER_SOURCES,
    Agent,
    ChainParentage,
    DatasetStats,
    RequestTransition,
    TaskSite,
    Workflow,
    WorkflowBundle,
    WorkflowSite,
    WorkflowTask,
)

__all__ = [
    "MockGenerator",
    "SITES",
    "AGENTS",
    "CAMPAIGNS",
    "REQUEST_STATUSES",
    "REQUEST_TYPES",
    "ACTIVE_STATUSES",
    "DEFAULT_NOW",
]

T = TypeVar("T")

#: The mock's "now" (epoch seconds, 2024-06-10 06:13:20 UTC): every date is before it.
DEFAULT_NOW: Final = 1_718_000_000
_WINDOW: Final = 180 * 86400  # requests were created during the 180 days before "now"
_NAME_SPACE: Final = _WINDOW * 10_000  # (creation second, 4-digit suffix) pairs
_NAME_MULT: Final = 2_654_435_761  # a prime, so i -> (a*i + b) mod _NAME_SPACE is a bijection

# --------------------------------------------------------------------------- vocabulary


class _Choice(Generic[T]):
    """A weighted choice over fixed items, with precomputed cumulative weights."""

    __slots__ = ("items", "cum", "total", "last")

    def __init__(self, pairs: Sequence[tuple[T, float]]) -> None:
        self.items = [item for item, _ in pairs]
        self.cum: list[float] = []
        total = 0.0
        for _, weight in pairs:
            total += weight
            self.cum.append(total)
        self.total = total
        self.last = len(self.items) - 1

    def __call__(self, rnd: Callable[[], float]) -> T:
        return self.items[min(bisect.bisect_right(self.cum, rnd() * self.total), self.last)]


def _site_weight(site: str) -> float:
    tier = site[:2]
    if tier == "T1":
        return 6.0
    if tier == "T0":
        return 0.6
    if tier == "T3":
        hpc = ("NERSC", "OSG", "TACC", "PSC", "SDSC", "HEPCloud", "Lancium")
        return 1.0 if site.endswith(hpc) else 0.5
    big = ("T2_US_", "T2_CH_CERN", "T2_DE_DESY", "T2_IT_", "T2_UK_London_IC", "T2_FR_",
           "T2_ES_CIEMAT", "T2_BE_IIHE", "T2_BR_SPRACE", "T2_EE_")
    return 3.0 if site.startswith(big) else 1.5


#: The CMS sites jobs run at: T0, the seven T1s, 58 T2s and 36 T3s (102 names).
SITES: Final[tuple[str, ...]] = (
    "T0_CH_CERN",
    "T1_DE_KIT", "T1_ES_PIC", "T1_FR_CCIN2P3", "T1_IT_CNAF", "T1_RU_JINR", "T1_UK_RAL",
    "T1_US_FNAL",
    "T2_AT_Vienna", "T2_BE_IIHE", "T2_BE_UCL", "T2_BR_SPRACE", "T2_BR_UERJ", "T2_CH_CERN",
    "T2_CH_CERN_HLT", "T2_CH_CSCS", "T2_CH_CSCS_HPC", "T2_CN_Beijing", "T2_DE_DESY",
    "T2_DE_RWTH", "T2_EE_Estonia", "T2_ES_CIEMAT", "T2_ES_IFCA", "T2_FI_HIP",
    "T2_FR_CCIN2P3", "T2_FR_GRIF_IRFU", "T2_FR_GRIF_LLR", "T2_FR_IPHC", "T2_GR_Ioannina",
    "T2_HU_Budapest", "T2_IN_TIFR", "T2_IT_Bari", "T2_IT_Legnaro", "T2_IT_Pisa",
    "T2_IT_Rome", "T2_KR_KISTI", "T2_KR_KNU", "T2_LV_HPCNET", "T2_MY_FSKTM",
    "T2_MY_UPM_BIRUNI", "T2_PK_NCP", "T2_PL_Cyfronet", "T2_PL_Swierk", "T2_PT_NCG_Lisbon",
    "T2_RU_IHEP", "T2_RU_INR", "T2_RU_ITEP", "T2_RU_JINR", "T2_RU_PNPI", "T2_RU_SINP",
    "T2_TH_CUNSTDA", "T2_TR_METU", "T2_TW_NCHC", "T2_UA_KIPT", "T2_UK_London_Brunel",
    "T2_UK_London_IC", "T2_UK_SGrid_Bristol", "T2_UK_SGrid_RALPP", "T2_US_Caltech",
    "T2_US_Florida", "T2_US_MIT", "T2_US_Nebraska", "T2_US_Purdue", "T2_US_UCSD",
    "T2_US_Vanderbilt", "T2_US_Wisconsin",
    "T3_BG_UNI_SOFIA", "T3_CH_PSI", "T3_CN_PKU", "T3_ES_Oviedo", "T3_FR_IPNL",
    "T3_GR_IASA", "T3_HR_IRB", "T3_IN_PUHEP", "T3_IT_Bologna", "T3_IT_Perugia",
    "T3_IT_Trieste", "T3_KR_KNU", "T3_KR_UOS", "T3_MX_Cinvestav", "T3_RU_FIAN",
    "T3_TW_NCU", "T3_UK_London_QMUL", "T3_UK_London_RHUL", "T3_UK_SGrid_Oxford",
    "T3_UK_ScotGrid_GLA", "T3_US_Baylor", "T3_US_Brown", "T3_US_CMU", "T3_US_Colorado",
    "T3_US_FNALLPC", "T3_US_HEPCloud", "T3_US_Lancium", "T3_US_NERSC", "T3_US_NotreDame",
    "T3_US_OSG", "T3_US_PSC", "T3_US_Rice", "T3_US_Rutgers", "T3_US_SDSC", "T3_US_TACC",
    "T3_US_UMD",
)
_SITE_INV_WEIGHT: Final = tuple(1.0 / _site_weight(s) for s in SITES)
_SITE_INDEX: Final = range(len(SITES))
_SITE_LISTS: Final = 256  # distinct site whitelists per generator
_HLT_SITES: Final = ("T2_CH_CERN_HLT", "T2_CH_CERN")

#: Agent URL -> (team, WMAgent version).
AGENTS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType({
    "cmsgwms-submit3.fnal.gov": ("production", "2.3.4.2"),
    "cmsgwms-submit4.fnal.gov": ("production", "2.3.4.2"),
    "cmsgwms-submit5.fnal.gov": ("production", "2.3.4.1"),
    "cmsgwms-submit6.fnal.gov": ("production", "2.3.4.2"),
    "cmsgwms-submit7.fnal.gov": ("production", "2.3.3.1"),
    "vocms0250.cern.ch": ("production", "2.3.4.2"),
    "vocms0251.cern.ch": ("production", "2.3.4.2"),
    "vocms0252.cern.ch": ("production", "2.3.4.1"),
    "vocms0253.cern.ch": ("production", "2.3.4.2"),
    "vocms0254.cern.ch": ("production", "2.3.3.1"),
    "vocms0255.cern.ch": ("production", "2.3.4.2"),
    "vocms0256.cern.ch": ("production", "2.3.4.2"),
    "vocms0257.cern.ch": ("production", "2.3.4.1"),
    "vocms0258.cern.ch": ("production", "2.3.4.2"),
    "vocms0259.cern.ch": ("relval", "2.3.4.2"),
    "vocms0260.cern.ch": ("relval", "2.3.4.2"),
    "vocms0261.cern.ch": ("relval", "2.3.4.1"),
    "vocms0500.cern.ch": ("hlt", "2.3.4.2"),
})
_TEAM_AGENTS: Final[dict[str, tuple[str, ...]]] = {
    team: tuple(url for url, (t, _) in AGENTS.items() if t == team)
    for team in ("production", "relval", "hlt")
}
_TEAM: Final = _Choice([("production", 88.0), ("relval", 10.0), ("hlt", 2.0)])
_N_AGENTS: Final = _Choice([(1, 60.0), (2, 28.0), (3, 12.0)])

#: ReqMgr2 statuses and their weight among the requests WMStats shows.
REQUEST_STATUSES: Final[Mapping[str, float]] = MappingProxyType({
    "new": 2.0, "assignment-approved": 4.0, "assigned": 5.0, "staging": 2.0,
    "staged": 1.0, "acquired": 10.0, "running-open": 22.0, "running-closed": 24.0,
    "force-complete": 1.5, "completed": 15.0, "closed-out": 6.0, "announced": 2.0,
    "aborted": 1.0, "aborted-completed": 1.5, "failed": 1.0, "rejected": 1.0,
})
_STATUS: Final = _Choice(list(REQUEST_STATUSES.items()))
#: Statuses whose workflows have jobs reported by agents.
ACTIVE_STATUSES: Final = frozenset({
    "acquired", "running-open", "running-closed", "force-complete", "completed",
    "closed-out", "announced", "aborted", "aborted-completed",
})
_PATH: Final = ("new", "assignment-approved", "assigned", "staging", "staged", "acquired",
                "running-open", "running-closed", "completed", "closed-out", "announced")

#: Request types and their weight (production team; relval requests are TaskChains).
REQUEST_TYPES: Final[Mapping[str, float]] = MappingProxyType({
    "TaskChain": 34.0, "StepChain": 30.0, "ReReco": 8.0, "Resubmission": 10.0,
    "MonteCarlo": 4.0, "ReDigi": 4.0, "DQMHarvest": 5.0, "MonteCarloFromGEN": 2.0,
})
_TYPE: Final = _Choice(list(REQUEST_TYPES.items()))
_CHAIN_LEN: Final = _Choice([(2, 30.0), (3, 28.0), (4, 20.0), (5, 10.0), (6, 6.0),
                             (7, 4.0), (8, 2.0)])


@dataclass(frozen=True, slots=True)
class _StepSpec:
    """One step of a production chain: campaign, outputs, release, cost."""

    label: str
    campaign: str
    tiers: tuple[str, ...]
    release: str
    arch: str
    global_tag: str
    pileup: str
    seconds_per_event: float
    from_scratch: bool


_UL_YEARS: Final = {
    "16APV": ("106X_mcRun2_asymptotic_preVFP_v11", "CMSSW_8_0_36_UL_patch2", "slc7_amd64_gcc530",
              "UL16_106X_mcRun2_asymptotic_v13-v1"),
    "16": ("106X_mcRun2_asymptotic_v17", "CMSSW_8_0_36_UL_patch2", "slc7_amd64_gcc530",
           "UL16_106X_mcRun2_asymptotic_v13-v1"),
    "17": ("106X_mc2017_realistic_v9", "CMSSW_9_4_14_UL_patch1", "slc7_amd64_gcc630",
           "UL17_106X_mc2017_realistic_v6-v3"),
    "18": ("106X_upgrade2018_realistic_v16_L1v1", "CMSSW_10_2_16_UL", "slc7_amd64_gcc700",
           "UL18_106X_upgrade2018_realistic_v11_L1v1-v2"),
}
_RUN3: Final = {
    "Run3Summer22": ("130X_mcRun3_2022_realistic_v5", "CMSSW_12_4_14_patch3", "el8_amd64_gcc10",
                     "Summer22_124X_mcRun3_2022_realistic_v11-v2"),
    "Run3Summer22EE": ("130X_mcRun3_2022_realistic_postEE_v6", "CMSSW_12_4_14_patch3",
                       "el8_amd64_gcc10", "Summer22_124X_mcRun3_2022_realistic_v11-v2"),
    "Run3Summer23": ("130X_mcRun3_2023_realistic_v14", "CMSSW_13_0_13", "el8_amd64_gcc11",
                     "Summer23_130X_mcRun3_2023_realistic_v13-v1"),
    "Run3Summer23BPix": ("130X_mcRun3_2023_realistic_postBPix_v2", "CMSSW_13_0_13",
                         "el8_amd64_gcc11", "Summer23BPix_130X_mcRun3_2023_realistic_v13-v1"),
}


def _mc_chains() -> list[tuple[_StepSpec, ...]]:
    chains: list[tuple[_StepSpec, ...]] = []
    for year, (gt, hlt_release, hlt_arch, premix) in _UL_YEARS.items():
        apv = "APV" if year == "16APV" else ""
        yy = year[:2]
        pu = f"/Neutrino_E-10_gun/RunIISummer20ULPrePremix-{premix}/PREMIX"
        old = "slc7_amd64_gcc700"
        chains.append((
            _StepSpec("wmLHEGEN", f"RunIISummer20UL{yy}wmLHEGEN{apv}", ("LHE", "GEN"),
                      "CMSSW_10_6_30_patch1", old, gt, "", 4.0, True),
            _StepSpec("SIM", f"RunIISummer20UL{yy}SIM{apv}", ("GEN-SIM",),
                      "CMSSW_10_6_17_patch1", old, gt, "", 60.0, False),
            _StepSpec("DIGIPremix", f"RunIISummer20UL{yy}DIGIPremix{apv}", ("GEN-SIM-DIGI",),
                      "CMSSW_10_6_17_patch1", old, gt, pu, 18.0, False),
            _StepSpec("HLT", f"RunIISummer20UL{yy}HLT{apv}", ("GEN-SIM-RAW",),
                      hlt_release, hlt_arch, gt, "", 6.0, False),
            _StepSpec("RECO", f"RunIISummer20UL{yy}RECO{apv}", ("AODSIM",),
                      "CMSSW_10_6_17_patch1", old, gt, "", 14.0, False),
            _StepSpec("MiniAODv2", f"RunIISummer20UL{yy}MiniAOD{apv}v2", ("MINIAODSIM",),
                      "CMSSW_10_6_20", old, gt, "", 1.2, False),
            _StepSpec("NanoAODv9", f"RunIISummer20UL{yy}NanoAOD{apv}v9", ("NANOAODSIM",),
                      "CMSSW_10_6_26", old, gt, "", 0.25, False),
        ))
    for camp, (gt, release, arch, premix) in _RUN3.items():
        pu = f"/Neutrino_E-10_gun/Run3Summer21PrePremix-{premix}/PREMIX"
        chains.append((
            _StepSpec("wmLHEGS", f"{camp}wmLHEGS", ("LHE", "GEN-SIM"), release, arch, gt, "",
                      55.0, True),
            _StepSpec("DRPremix", f"{camp}DRPremix", ("AODSIM",), release, arch, gt, pu, 32.0,
                      False),
            _StepSpec("MiniAODv4", f"{camp}MiniAODv4", ("MINIAODSIM",), "CMSSW_13_0_13",
                      "el8_amd64_gcc11", gt, "", 1.4, False),
            _StepSpec("NanoAODv12", f"{camp}NanoAODv12", ("NANOAODSIM",), "CMSSW_13_0_13",
                      "el8_amd64_gcc11", gt, "", 0.3, False),
        ))
    gt, release, arch = "133X_mcRun3_2024_realistic_v9", "CMSSW_13_3_1_patch1", "el8_amd64_gcc12"
    pu = "/MinBias_TuneCP5_13p6TeV-pythia8/Run3Winter24GS-133X_mcRun3_2024_realistic_v8-v1/GEN-SIM"
    chains.append((
        _StepSpec("GS", "Run3Winter24GS", ("GEN-SIM",), release, arch, gt, "", 50.0, True),
        _StepSpec("Digi", "Run3Winter24Digi", ("GEN-SIM-RAW",), release, arch, gt, pu, 25.0,
                  False),
        _StepSpec("Reco", "Run3Winter24Reco", ("AODSIM",), release, arch, gt, "", 16.0, False),
        _StepSpec("MiniAOD", "Run3Winter24MiniAOD", ("MINIAODSIM",), release, arch, gt, "",
                  1.5, False),
        _StepSpec("NanoAOD", "Run3Winter24NanoAOD", ("NANOAODSIM",), release, arch, gt, "",
                  0.3, False),
    ))
    gt, release, arch = "140X_mcRun4_realistic_v4", "CMSSW_14_0_6", "el8_amd64_gcc12"
    pu = "/MinBias_TuneCP5_14TeV-pythia8/Phase2Spring24GS-140X_mcRun4_realistic_v4-v1/GEN-SIM"
    chains.append((
        _StepSpec("GS", "Phase2Spring24GS", ("GEN-SIM",), release, arch, gt, "", 90.0, True),
        _StepSpec("DIGIRECOMiniAOD", "Phase2Spring24DIGIRECOMiniAOD",
                  ("GEN-SIM-DIGI-RAW-MINIAOD", "MINIAODSIM"), release, arch, gt, pu, 120.0,
                  False),
    ))
    return chains


_MC_CHAINS: Final = _mc_chains()
_MC_CHAIN: Final = _Choice([(c, 6.0 if c[0].campaign.startswith("RunIISummer20") else 5.0)
                            for c in _MC_CHAINS])

_RELVAL_RELEASES: Final = (
    ("CMSSW_14_0_0", "el8_amd64_gcc12", "140X_mcRun3_2024_realistic_v3"),
    ("CMSSW_14_0_6", "el8_amd64_gcc12", "140X_mcRun3_2024_realistic_v8"),
    ("CMSSW_14_1_0_pre3", "el8_amd64_gcc12", "140X_mcRun3_2024_realistic_v10"),
    ("CMSSW_13_3_0_pre5", "el8_amd64_gcc12", "133X_mcRun3_2023_realistic_v3"),
)
_RELVAL_LABELS: Final = ("fullsim_noPU_2024_14TeV", "fullsim_PU_2024_14TeV",
                         "fullsim_noPU_2023_14TeV")
_RELVAL_SAMPLES: Final = ("TTbar_14TeV", "ZEE_14", "ZMM_14", "SingleMuPt10",
                          "QCD_FlatPt_15_3000HS_14", "H125GGgluonfusion_14", "MinBias_14TeV",
                          "ZpTT_1500_14", "NuGun", "SingleElectronPt35")
_RELVAL_STEPS: Final = (
    ("GenSimFull", ("GEN-SIM",), 60.0, True),
    ("Digi", ("GEN-SIM-DIGI-RAW",), 20.0, False),
    ("Reco", ("GEN-SIM-RECO", "AODSIM", "MINIAODSIM"), 25.0, False),
    ("Nano", ("NANOAODSIM",), 0.4, False),
    ("HARVEST", ("DQMIO",), 0.1, False),
)

#: (campaign, eras, release, arch, global tag, processing string, input tier, output tiers)
_DATA_CAMPAIGNS: Final[tuple[tuple[str, tuple[str, ...], str, str, str, str, str,
                                   tuple[str, ...]], ...]] = (
    ("UL2016_MiniAODv2", ("Run2016B", "Run2016C", "Run2016D", "Run2016E", "Run2016F",
                          "Run2016G", "Run2016H"),
     "CMSSW_10_6_25", "slc7_amd64_gcc700", "106X_dataRun2_v35", "UL2016_MiniAODv2", "AOD",
     ("MINIAOD",)),
    ("UL2017_MiniAODv2", ("Run2017B", "Run2017C", "Run2017D", "Run2017E", "Run2017F"),
     "CMSSW_10_6_25", "slc7_amd64_gcc700", "106X_dataRun2_v35", "UL2017_MiniAODv2", "AOD",
     ("MINIAOD",)),
    ("UL2018_MiniAODv2", ("Run2018A", "Run2018B", "Run2018C", "Run2018D"),
     "CMSSW_10_6_25", "slc7_amd64_gcc700", "106X_dataRun2_v35", "UL2018_MiniAODv2", "AOD",
     ("MINIAOD",)),
    ("Run3Winter23Reco", ("Run2022C", "Run2022D", "Run2022E"),
     "CMSSW_12_4_16_patch1", "el8_amd64_gcc10", "124X_dataRun3_v15", "27Jun2023", "RAW",
     ("AOD", "MINIAOD", "NANOAOD", "DQMIO")),
    ("Run3Summer23Reco", ("Run2023B", "Run2023C", "Run2023D"),
     "CMSSW_13_0_17", "el8_amd64_gcc11", "130X_dataRun3_v2", "19Dec2023", "RAW",
     ("AOD", "MINIAOD", "NANOAOD", "DQMIO")),
    ("Run2024_ECALRatio", ("Run2024C", "Run2024D", "Run2024E", "Run2024F"),
     "CMSSW_14_0_7", "el8_amd64_gcc12", "140X_dataRun3_v4", "ECALRatio", "RAW",
     ("AOD", "MINIAOD", "NANOAOD", "DQMIO")),
    ("Run2024_NanoAODv14", ("Run2024B", "Run2024C", "Run2024D", "Run2024E"),
     "CMSSW_14_0_15", "el8_amd64_gcc12", "140X_dataRun3_v11", "NanoAODv14", "MINIAOD",
     ("NANOAOD",)),
)
_DATA_PDS: Final = ("JetMET0", "JetMET1", "Muon0", "Muon1", "EGamma0", "EGamma1", "Tau",
                    "BTagMu", "DisplacedJet", "ZeroBias", "MuonEG", "HLTPhysics", "NoBPTX",
                    "ParkingDoubleMuonLowMass0", "Commissioning", "JetHT", "SingleMuon",
                    "DoubleMuon", "MET")

_MC_PROCESSES: Final = (
    "DYJetsToLL_M-50", "DYto2L-2Jets_MLL-50", "TTTo2L2Nu", "TTtoLNu2Q", "TTToHadronic",
    "WJetsToLNu", "WtoLNu-4Jets", "QCD_PT-15to7000_Flat", "QCD_HT1000to1500",
    "GluGluHToBB_M-125", "GluGluHToGG_M-125", "VBFHToTauTau_M125", "ZprimeToTT_M3000_W30",
    "BulkGravitonToHH_M-1000", "ST_tW_top_5f_inclusiveDecays", "WWTo2L2Nu", "WZTo3LNu",
    "ZZTo4L", "TTZToLLNuNu_M-10", "TTWJetsToLNu", "HToSSTo4B_MH-125_MS-40_ctauS-100",
    "SMS-T1tttt_mGluino-2000_mLSP-100", "BsToMuMu_SoftQCDnonD", "JPsiToMuMu_PT-0to100",
    "MinBias", "Neutrino_E-10_gun", "VectorZPrimeToQQ_M-200", "ChargedHiggs_HplusTB_M-500",
    "EtaTo2Mu2E", "LQToBMu_M-1500",
)
_MC_GENERATORS: Final = ("madgraphMLM-pythia8", "amcatnloFXFX-pythia8", "powheg-pythia8",
                         "pythia8", "madgraph-pythia8", "JHUGen-pythia8", "evtgen-pythia8")
_PAGS: Final = ("HIG", "B2G", "EXO", "SUS", "TOP", "SMP", "BPH", "TSG", "BTV", "JME", "EGM",
                "MUO", "TAU", "HIN", "GEN", "PPS", "MLG", "BPH", "HIG", "EXO")
_GROUP: Final = _Choice([("PPD", 80.0), ("DATAOPS", 12.0), ("RelVal", 4.0), ("HIG", 2.0),
                         ("B2G", 2.0)])
_PRIORITY: Final = _Choice([(63000, 10.0), (80000, 15.0), (85000, 25.0), (90000, 20.0),
                            (110000, 15.0), (130000, 8.0), (200000, 4.0), (300000, 3.0)])

_DN_USER: Final = ("/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=pdmvserv/CN={n}/"
                   "CN=Robot: PdmV Service")
_DN_UNIFIED: Final = ("/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=cmsunified/CN=766218/"
                      "CN=Robot: CMS Unified")
_DN_MS: Final = "/DC=ch/DC=cern/OU=computers/CN=tier0/vocms0750.cern.ch"
_DN_WQ: Final = "/DC=ch/DC=cern/OU=computers/CN=wmagent/vocms0192.cern.ch"
_DN_BY_STATUS: Final = {
    "new": "", "assignment-approved": "", "rejected": "",
    "assigned": _DN_UNIFIED, "force-complete": _DN_UNIFIED, "aborted": _DN_UNIFIED,
    "closed-out": _DN_UNIFIED, "announced": _DN_UNIFIED,
    "staging": _DN_MS, "staged": _DN_MS, "failed": _DN_WQ, "acquired": _DN_WQ,
    "running-open": _DN_WQ, "running-closed": _DN_WQ, "completed": _DN_WQ,
    "aborted-completed": _DN_WQ,
}

#: Output module name of each data tier.
_MODULES: Final = {
    "LHE": "LHEoutput", "GEN": "RAWSIMoutput", "GEN-SIM": "RAWSIMoutput",
    "GEN-SIM-DIGI": "PREMIXRAWoutput", "GEN-SIM-RAW": "RAWSIMoutput",
    "GEN-SIM-DIGI-RAW": "FEVTDEBUGHLToutput", "GEN-SIM-DIGI-RAW-MINIAOD": "PREMIXRAWoutput",
    "GEN-SIM-RECO": "RECOSIMoutput", "AODSIM": "AODSIMoutput",
    "MINIAODSIM": "MINIAODSIMoutput", "NANOAODSIM": "NANOAODSIMoutput", "AOD": "AODoutput",
    "MINIAOD": "MINIAODoutput", "NANOAOD": "NANOAODoutput", "DQMIO": "DQMoutput",
}
#: Bytes per event of each data tier (before jitter).
_EVENT_SIZE: Final = {
    "LHE": 4_000, "GEN": 60_000, "GEN-SIM": 900_000, "GEN-SIM-DIGI": 1_800_000,
    "GEN-SIM-RAW": 2_400_000, "GEN-SIM-DIGI-RAW": 3_000_000,
    "GEN-SIM-DIGI-RAW-MINIAOD": 3_200_000, "GEN-SIM-RECO": 1_500_000, "AODSIM": 420_000,
    "MINIAODSIM": 45_000, "NANOAODSIM": 1_800, "AOD": 350_000, "MINIAOD": 40_000,
    "NANOAOD": 1_500, "DQMIO": 300,
}

#: Every campaign the generator uses.
CAMPAIGNS: Final[tuple[str, ...]] = tuple(dict.fromkeys(
    [s.campaign for chain in _MC_CHAINS for s in chain]
    + [c[0] for c in _DATA_CAMPAIGNS]
    + [f"{r[0]}__{label}" for r in _RELVAL_RELEASES for label in _RELVAL_LABELS]
))

_COMPONENTS: Final = ("JobSubmitter", "JobAccountant", "ErrorHandler", "DBS3Upload",
                      "JobTracker", "WorkQueueManager", "RetryManager", "JobArchiver",
                      "TaskArchiver", "JobStatusLite", "JobCreator", "RucioInjector",
                      "ArchiveDataReporter", "AgentStatusWatcher", "CouchServer")
_DISKS: Final = (("/dev/vdb", "/data"), ("/dev/vda1", "/"), ("/dev/vdc", "/data1"),
                 ("tmpfs", "/tmp"))
_AGENT_STATUS: Final = _Choice([("ok", 70.0), ("warning", 15.0), ("error", 10.0),
                                ("down", 5.0)])

# Nested WMCore path of each counter: "SubmittedRunning" -> ("submitted", "running").
_NEST: Final[dict[str, tuple[str, str | None]]] = {
    field: (path.split(".")[0], path.split(".")[1] if "." in path else None)
    for field, path in COUNTER_SOURCES.items()
}

# Constant request keys real documents carry that no consumer of the schema reads.
_REQUEST_CONSTANTS: Final[dict[str, Any]] = {
    "AllowOpportunistic": False, "BlockCloseMaxEvents": 25_000_000, "BlockCloseMaxFiles": 500,
    "BlockCloseMaxSize": 5_000_000_000_000, "BlockCloseMaxWaitTime": 66_400,
    "ConfigCacheUrl": "https://cmsweb.cern.ch/couchdb", "CouchDBName": "reqmgr_config_cache",
    "CouchURL": "https://cmsweb.cern.ch/couchdb", "CouchWorkloadDBName": "reqmgr_workload_cache",
    "CustodialGroup": "DataOps", "CustodialSubType": "Replica", "DQMConfigCacheID": None,
    "DQMHarvestUnit": "byRun", "DQMUploadProxy": None,
    "DQMUploadUrl": "https://cmsweb.cern.ch/dqm/offline", "DashboardHost": "cms-jobmon.cern.ch",
    "DashboardPort": 8884, "DbsUrl": "https://cmsweb-prod.cern.ch/dbs/prod/global/DBSReader",
    "DeleteFromSource": False, "DeterministicPileup": False, "EnableHarvesting": False,
    "EnableNewStageout": False, "EventStreams": 0, "FirstEvent": 1, "FirstLumi": 1,
    "GlobalTagConnect": None, "GracePeriod": 300, "HardTimeout": 129_900,
    "IncludeParents": False, "MaxMergeEvents": 20_000_000, "MaxMergeSize": 4_294_967_296,
    "MaxWaitTime": 86_400, "MinMergeSize": 2_147_483_648, "NonCustodialGroup": "DataOps",
    "NonCustodialSubType": "Replica", "OpenRunningTimeout": 0, "OverrideCatalog": None,
    "PeriodicHarvestInterval": 0, "RobustMerge": True, "RunNumber": 0, "SoftTimeout": 129_600,
    "SubscriptionPriority": "Low", "TrustPUSitelists": False, "TrustSitelists": False,
    "UnmergedLFNBase": "/store/unmerged", "ValidStatus": "PRODUCTION", "VoGroup": "unknown",
    "VoRole": "unknown", "Dashboard": "production",
}

# --------------------------------------------------------------------------- the truth


@dataclass(slots=True)
class _Step:
    """One TaskN / StepN of a chain, or the single step of any other request."""

    key: str
    name: str
    campaign: str
    cmssw: str  # "" when the step inherits the top-level value
    arch: str  # "" when the step inherits the top-level value
    acq_era: str
    proc_string: str
    prep_id: str
    global_tag: str
    outputs: tuple[str, ...]
    parent: str | None
    mc_pileup: str
    seconds_per_event: float
    events_per_job: int
    filter_eff: float
    num_events: int
    input_ref: str
    input_module: str
    memory: int
    cores: int
    config_id: str
    keep_output: bool


@dataclass(slots=True)
class _SiteReport:
    """One task at one site, from one agent."""

    site: str
    counters: dict[str, int]  # static counter field -> jobs, zeros left out
    perf: tuple[float, float, float, int, float] | None
    datasets: tuple[tuple[str, int, int, int], ...] | None  # (dataset, events, size, lumis)


@dataclass(slots=True)
class _TaskReport:
    """One task as reported by one agent."""

    path: str
    job_type: str
    subscription: tuple[int, int, int, int]  # open, finished, total, updated
    skipped: int
    sites: list[_SiteReport]


@dataclass(slots=True)
class _AgentReport:
    """One agent's view of one workflow (one ``agent_request`` document)."""

    url: str
    doc_id: str
    timestamp: int
    top: dict[str, int]  # counters reported only at the workflow level
    tasks: list[_TaskReport]


@dataclass(slots=True)
class _Truth:
    """Everything about one workflow, independent of how it is rendered."""

    name: str
    status: str
    request_type: str
    sub_type: str
    campaign: str
    team: str
    group: str
    requestor: str
    requestor_dn: str
    prep_id: str
    cmssw: str
    arch: str
    priority: int
    initial_priority: int
    date: int
    transitions: list[tuple[str, int, str]]
    input_dataset: str
    output_datasets: tuple[str, ...]
    mc_pileup: str
    whitelist: tuple[str, ...]
    blacklist: tuple[str, ...]
    lfn_bases: tuple[str, ...]
    merged_lfn: str
    parentage_resolved: bool | None  # None: the key is absent
    chain: str  # "TaskChain", "StepChain" or ""
    steps: list[_Step]
    per_task_names: bool  # top-level AcquisitionEra/ProcessingString as {TaskName: value}
    acq_era: str
    proc_string: str
    processing_version: int
    primary_dataset: str
    global_tag: str
    total_jobs: int
    input_events: int
    input_lumis: int
    input_files: int
    num_events: int
    time_per_event: float
    size_per_event: int
    memory: int
    cores: int
    original_request: str
    agents: list[_AgentReport]


def _dedup(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _stamp(epoch: int) -> str:
    t = time.gmtime(epoch)
    return (f"{t.tm_year % 100:02d}{t.tm_mon:02d}{t.tm_mday:02d}_"
            f"{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}")


# --------------------------------------------------------------------------- generator


class MockGenerator:
    """Deterministic generator of mock WMStats data.

    The same ``seed`` and knobs always give the same data; workflow ``i`` depends
    only on ``(seed, i)``, so any slice can be made on its own.

    :param seed: the random seed.
    :param max_tasks: most tasks (task paths) a workflow has in its agents' reports.
    :param max_sites: most sites one task runs at on one agent.
    :param max_agents: most agents one workflow runs on (1 to 3).
    :param now: the reference time (epoch seconds); every date is before it.
    """

    def __init__(self, seed: int = 0, *, max_tasks: int = 10, max_sites: int = 30,
                 max_agents: int = 3, now: int = DEFAULT_NOW) -> None:
        if max_tasks < 1 or max_sites < 1 or max_agents < 1:
            raise ValueError("max_tasks, max_sites and max_agents must be at least 1")
        self.seed = seed
        self.max_tasks = max_tasks
        self.max_sites = max_sites
        self.max_agents = max_agents
        self.now = now
        self._name_offset = random.Random(f"{seed}:names").randrange(_NAME_SPACE)
        self._agent_infos = self._make_agents()
        self._site_lists = self._make_site_lists()

    def __repr__(self) -> str:
        return (f"MockGenerator(seed={self.seed!r}, max_tasks={self.max_tasks}, "
                f"max_sites={self.max_sites}, max_agents={self.max_agents}, now={self.now})")

    # ----------------------------------------------------------------- public API

    def workflow_name(self, i: int) -> str:
        """The name of workflow ``i`` (unique per index for a given seed)."""
        return self._truth(i).name

    def bundle(self, i: int) -> WorkflowBundle:
        """The static records of workflow ``i``."""
        return _render_bundle(self._truth(i))

    def documents(self, i: int) -> list[dict[str, Any]]:
        """The dynamic documents of workflow ``i``: its request, then its agent_request docs."""
        truth = self._truth(i)
        return [_render_request(truth), *(_render_agent_request(truth, a) for a in truth.agents)]

    def agents(self) -> list[Agent]:
        """The static agent records, sorted by URL."""
        return [_render_agent(info) for info in self._agent_infos]

    def agent_documents(self) -> list[dict[str, Any]]:
        """The ``agent_info`` documents, sorted by agent URL."""
        return [_render_agent_info(info) for info in self._agent_infos]

    def bundles(self, n: int, start: int = 0) -> Iterator[WorkflowBundle]:
        """Static records of workflows ``start`` to ``start + n - 1``, in constant memory."""
        for i in range(start, start + n):
            yield _render_bundle(self._truth(i))

    def iter_documents(self, n: int, start: int = 0) -> Iterator[dict[str, Any]]:
        """Every dynamic document: the ``agent_info`` docs, then each workflow's documents.

        :param n: number of workflows.
        :param start: index of the first workflow.
        """
        yield from self.agent_documents()
        for i in range(start, start + n):
            yield from self.documents(i)

    # ----------------------------------------------------------------- sites

    def _make_site_lists(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """Site whitelists requests share, each as (most used first, sorted).

        Like production, requests reuse a limited set of whitelists (all T1s and
        T2s, the US sites, CERN only...).  Making them once per generator keeps
        each workflow cheap.
        """
        rng = random.Random(f"{self.seed}:sites")
        rnd = rng.random
        out: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        for _ in range(_SITE_LISTS):
            u = rnd()
            size = (1 + int(rnd() * 4) if u < 0.2 else
                    8 + int(rnd() * 23) if u < 0.65 else 30 + int(rnd() * 41))
            # Weighted sampling without replacement (Efraimidis-Spirakis keys).
            keys = [rnd() ** w for w in _SITE_INV_WEIGHT]
            popular = tuple(SITES[j] for j in heapq.nlargest(size, _SITE_INDEX,
                                                             key=keys.__getitem__))
            out.append((popular, tuple(sorted(popular))))
        return out

    # ----------------------------------------------------------------- agents

    def _make_agents(self) -> list[_AgentInfo]:
        """The agents' heartbeats, sorted by URL."""
        rng = random.Random(f"{self.seed}:agents")
        rnd = rng.random
        out: list[_AgentInfo] = []
        for url in sorted(AGENTS):
            team, version = AGENTS[url]
            status = _AGENT_STATUS(rnd)
            drain = rnd() < 0.1
            disks: list[tuple[str, str, int]] = []
            if status == "warning" and (not drain or rnd() < 0.5):
                for fs, mount in rng.sample(_DISKS, 1 + int(rnd() * 1.5)):
                    disks.append((fs, mount, 85 + int(rnd() * 15)))
            if status == "warning" and not disks:
                drain = True
            down: list[str] = []
            if status in ("error", "down"):
                down = rng.sample(_COMPONENTS, 1 + int(rnd() * 2.5))
            age = int(rnd() * 600) + (int(rnd() * 7200) + 3600 if status == "down" else 0)
            stamp = self.now - age
            out.append(_AgentInfo(url, team, version, status, down, drain, disks, stamp,
                                  stamp - int(rnd() * 900)))
        return out

    # ----------------------------------------------------------------- the truth

    def _truth(self, i: int) -> _Truth:
        """Everything about workflow ``i``, from a generator seeded by (seed, i) alone."""
        if i < 0:
            raise IndexError(f"workflow index must not be negative, got {i}")
        rng = random.Random(f"{self.seed}:{i}")
        rnd = rng.random
        now = self.now

        # Creation time and name suffix: a bijection of i, so names never repeat.
        code = (_NAME_MULT * i + self._name_offset) % _NAME_SPACE
        created = now - 3600 - code // 10_000
        suffix = code % 10_000
        stamp = _stamp(created)

        team = _TEAM(rnd)
        status = _STATUS(rnd)
        rtype = "TaskChain" if team == "relval" else _TYPE(rnd)
        group = "RelVal" if team == "relval" else _GROUP(rnd)
        pag = _PAGS[int(rnd() * len(_PAGS))]
        serial = 1 + int(rnd() * 99_999)
        version = 1 + int(rnd() ** 3 * 6)
        size_jitter = 0.8 + 0.4 * rnd()

        steps: list[_Step] = []
        sub_type = ""
        chain = ""
        input_dataset = ""
        mc_pileup = ""
        original = ""
        requestor = "pdmvserv"
        per_task_names = False
        if team == "relval":
            steps, name = self._relval(rng, stamp, suffix, version)
            chain, sub_type, per_task_names = "TaskChain", "RelVal", True
            primary = steps[0].outputs[0].split("/")[1]
        elif rtype in ("ReReco", "DQMHarvest"):
            (camp, eras, release, arch, gt, proc, in_tier,
             tiers) = _DATA_CAMPAIGNS[int(rnd() * len(_DATA_CAMPAIGNS))]
            era = eras[int(rnd() * len(eras))]
            primary = _DATA_PDS[int(rnd() * len(_DATA_PDS))]
            if rtype == "DQMHarvest":
                input_dataset = f"/{primary}/{era}-{proc}-v{version}/DQMIO"
                tiers = ()
                name = f"pdmvserv_{era}_{primary}_{proc}_DQMHarvest_{stamp}_{suffix:04d}"
            else:
                input_dataset = f"/{primary}/{era}-v1/{in_tier}"
                name = f"pdmvserv_{era}_{primary}_{proc}_{stamp}_{suffix:04d}"
            outputs = tuple(f"/{primary}/{era}-{proc}-v{version}/{t}" for t in tiers)
            steps.append(_Step(
                key="", name="DataProcessing" if rtype == "ReReco" else "EndOfRunDQMHarvest",
                campaign=camp, cmssw=release, arch=arch, acq_era=era, proc_string=proc,
                prep_id=f"ReReco-{camp}-{serial:05d}", global_tag=gt, outputs=outputs,
                parent=None, mc_pileup="", seconds_per_event=6.0 if rtype == "ReReco" else 0.05,
                events_per_job=2000 + int(rnd() * 30000), filter_eff=1.0, num_events=0,
                input_ref="", input_module="", memory=4000, cores=4, config_id="",
                keep_output=True))
        else:
            spec_chain = _MC_CHAIN(rnd)
            primary = (f"{_MC_PROCESSES[int(rnd() * len(_MC_PROCESSES))]}_TuneCP5_"
                       f"{'13TeV' if spec_chain[0].campaign.startswith('RunII') else '13p6TeV'}"
                       f"-{_MC_GENERATORS[int(rnd() * len(_MC_GENERATORS))]}")
            if rtype in ("TaskChain", "StepChain"):
                length = min(_CHAIN_LEN(rnd), len(spec_chain))
                first = 0 if rnd() < 0.7 else int(rnd() * (len(spec_chain) - length + 1))
                specs = spec_chain[first:first + length]
                chain = rtype
                per_task_names = rtype == "TaskChain"
            elif rtype == "MonteCarlo":
                specs = spec_chain[:1]
                first = 0
            elif rtype == "MonteCarloFromGEN":
                specs = spec_chain[1:2]
                first = 1
            elif rtype == "ReDigi":
                digi = next(k for k, s in enumerate(spec_chain) if s.pileup)
                specs = spec_chain[digi:digi + 1]
                first = digi
            else:  # Resubmission (ACDC): one task of a chain
                first = int(rnd() * len(spec_chain))
                specs = spec_chain[first:first + 1]
            prep = f"{pag}-{specs[0].campaign}-{serial:05d}"
            if first > 0:
                prev = spec_chain[first - 1]
                input_dataset = (f"/{primary}/{prev.campaign}-{prev.global_tag}-v{version}/"
                                 f"{prev.tiers[-1]}")
            if rtype in ("TaskChain", "StepChain"):
                name = f"pdmvserv_task_{prep}__v1_T_{stamp}_{suffix:04d}"
            elif rtype == "Resubmission":
                requestor = "cmsunified"
                original = (f"pdmvserv_task_{prep}__v1_T_{_stamp(created - 86400 * 9)}_"
                            f"{serial % 10_000:04d}")
                name = f"cmsunified_ACDC0_task_{prep}__v1_T_{stamp}_{suffix:04d}"
            else:
                name = f"pdmvserv_{prep}_{serial % 1000:05d}_v0__{stamp}_{suffix:04d}"
            parent: str | None = None
            for k, spec in enumerate(specs):
                outputs = tuple(f"/{primary}/{spec.campaign}-{spec.global_tag}-v{version}/{t}"
                                for t in spec.tiers)
                keep = chain != "StepChain" or k == len(specs) - 1 or rnd() < 0.6
                step_key = (f"Task{k + 1}" if chain == "TaskChain" else
                            f"Step{k + 1}" if chain == "StepChain" else "")
                step_prep = f"{pag}-{spec.campaign}-{(serial + 7 * k) % 100_000:05d}"
                if chain:
                    step_name = f"{step_prep}_0"
                elif rtype in ("MonteCarlo", "MonteCarloFromGEN"):
                    step_name = "Production" if rtype == "MonteCarlo" else "MonteCarloFromGEN"
                elif rtype == "ReDigi":
                    step_name = "StepOneProc"
                else:
                    step_name = f"{step_prep}_0"
                steps.append(_Step(
                    key=step_key, name=step_name, campaign=spec.campaign,
                    cmssw=spec.release if (not chain or k == 0 or rnd() < 0.8) else "",
                    arch=spec.arch if (not chain or k == 0 or rnd() < 0.8) else "",
                    acq_era=spec.campaign, proc_string=spec.global_tag,
                    prep_id=step_prep, global_tag=spec.global_tag,
                    outputs=outputs if keep else (), parent=parent,
                    mc_pileup=spec.pileup, seconds_per_event=spec.seconds_per_event,
                    events_per_job=int((200 + rnd() * 1800) / max(spec.seconds_per_event, 1.0)
                                       * 20) + 10,
                    filter_eff=round(0.05 + rnd() * 0.95, 3) if spec.from_scratch else 1.0,
                    num_events=(100_000 * (1 + int(rnd() * 50))
                                if spec.from_scratch and k == 0 else 0),
                    input_ref=steps[k - 1].name if k else "",
                    input_module=_MODULES[specs[k - 1].tiers[-1]] if k else "",
                    memory=2000 + 500 * int(rnd() * 13), cores=(1, 2, 4, 8)[int(rnd() * 4)],
                    config_id=f"{rng.getrandbits(128):032x}", keep_output=keep))
                if keep:
                    parent = outputs[-1]
            if not chain:
                mc_pileup = steps[0].mc_pileup
                steps[0].mc_pileup = ""

        first_step = steps[0]
        output_datasets = tuple(ds for s in steps for ds in s.outputs)
        priority = _PRIORITY(rnd)
        if team == "relval":
            priority = 500_000 if rnd() < 0.3 else 450_000
        initial_priority = priority if rnd() < 0.8 else _PRIORITY(rnd)
        requestor_dn = (_DN_UNIFIED if requestor == "cmsunified" else
                        _DN_USER.format(n=700_000 + serial % 100_000))
        transitions = self._transitions(rng, status, created, requestor_dn)

        # Where the request may run.
        whitelist: tuple[str, ...] = ()
        blacklist: tuple[str, ...] = ()
        popular: tuple[str, ...] = ()
        if status not in ("new", "assignment-approved", "rejected"):
            if team == "hlt":
                popular, whitelist = _HLT_SITES, tuple(sorted(_HLT_SITES))
            else:
                popular, whitelist = self._site_lists[int(rnd() * len(self._site_lists))]
            if rnd() < 0.15:
                chosen = set(popular)
                blacklist = tuple(sorted({s for s in rng.sample(SITES, 1 + int(rnd() * 3))
                                          if s not in chosen}))

        total_jobs = 0
        input_events = 0
        for s in steps:
            events = s.num_events or (100_000 + int(rnd() * 20_000_000))
            total_jobs += max(1, int(events / s.events_per_job))
            input_events = input_events or events
        input_files = int(input_events / 30_000) + 1 if input_dataset else 0
        lumis = int(input_events / 1000) + 1

        truth = _Truth(
            name=name, status=status, request_type=rtype, sub_type=sub_type,
            campaign=first_step.campaign, team=team if whitelist else "", group=group,
            requestor=requestor,
            requestor_dn=requestor_dn,
            prep_id=first_step.prep_id,
            cmssw=first_step.cmssw, arch=first_step.arch, priority=priority,
            initial_priority=initial_priority, date=created, transitions=transitions,
            input_dataset=input_dataset, output_datasets=output_datasets,
            mc_pileup=mc_pileup, whitelist=whitelist, blacklist=blacklist,
            lfn_bases=tuple(_lfn_base(ds) for ds in output_datasets),
            merged_lfn="/store/relval" if team == "relval" else
            "/store/data" if rtype in ("ReReco", "DQMHarvest") else "/store/mc",
            parentage_resolved=(status in ("closed-out", "announced") or rnd() < 0.2)
            if chain == "StepChain" else None,
            chain=chain, steps=steps, per_task_names=per_task_names,
            acq_era=first_step.acq_era, proc_string=first_step.proc_string,
            processing_version=version, primary_dataset=primary,
            global_tag=first_step.global_tag, total_jobs=total_jobs,
            input_events=input_events, input_lumis=lumis if input_dataset else 0,
            input_files=input_files, num_events=first_step.num_events,
            time_per_event=first_step.seconds_per_event,
            size_per_event=int(_EVENT_SIZE.get(
                first_step.outputs[0].rsplit("/", 1)[1] if first_step.outputs else "DQMIO",
                1000) * size_jitter),
            memory=first_step.memory, cores=first_step.cores, original_request=original,
            agents=[],
        )
        if status in ACTIVE_STATUSES and popular:
            self._agent_reports(rng, truth, popular)
        return truth

    def _relval(self, rng: random.Random, stamp: str, suffix: int,
                version: int) -> tuple[list[_Step], str]:
        """The steps and name of a release validation TaskChain."""
        rnd = rng.random
        release, arch, gt = _RELVAL_RELEASES[int(rnd() * len(_RELVAL_RELEASES))]
        label = _RELVAL_LABELS[int(rnd() * len(_RELVAL_LABELS))]
        sample = _RELVAL_SAMPLES[int(rnd() * len(_RELVAL_SAMPLES))]
        campaign = f"{release}__{label}"
        length = 2 + int(rnd() * (len(_RELVAL_STEPS) - 1))
        steps: list[_Step] = []
        parent: str | None = None
        era = release
        proc = f"{gt}_{label.split('_')[1]}"
        for k, (step_name, tiers, cost, scratch) in enumerate(_RELVAL_STEPS[:length]):
            outputs = tuple(f"/RelVal{sample}/{era}-{proc}-v{version}/{t}" for t in tiers)
            steps.append(_Step(
                key=f"Task{k + 1}", name=f"{step_name}_{label.split('_')[2]}",
                campaign=campaign, cmssw=release, arch=arch, acq_era=era,
                proc_string=proc, prep_id=f"{release}__{label}-{sample}-{version:05d}",
                global_tag=gt, outputs=outputs, parent=parent, mc_pileup="",
                seconds_per_event=cost, events_per_job=int(900 / max(cost, 1.0)) + 10,
                filter_eff=1.0, num_events=9000 if scratch else 0,
                input_ref=steps[k - 1].name if k else "",
                input_module=_MODULES[_RELVAL_STEPS[k - 1][1][-1]] if k else "",
                memory=3000 + 1000 * int(rnd() * 4), cores=(1, 4, 8)[int(rnd() * 3)],
                config_id=f"{rng.getrandbits(128):032x}", keep_output=True))
            parent = outputs[0]
        name = f"pdmvserv_RVCMSSW_{release[6:]}{sample}__{label}_{stamp}_{suffix:04d}"
        return steps, name

    def _transitions(self, rng: random.Random, status: str, created: int,
                     user_dn: str) -> list[tuple[str, int, str]]:
        """The status history ending in ``status``: (status, time, DN), oldest first."""
        rnd = rng.random
        if status in _PATH:
            path = list(_PATH[:_PATH.index(status) + 1])
        elif status == "force-complete":
            path = [*_PATH[:_PATH.index("running-closed") + 1], "force-complete"]
        elif status in ("aborted", "aborted-completed"):
            stop = 2 + int(rnd() * 6)
            path = [*_PATH[:stop + 1], "aborted"]
            if status == "aborted-completed":
                path.append("aborted-completed")
        elif status == "failed":
            path = [*_PATH[:_PATH.index("staged") + 1], "failed"]
        else:  # rejected
            path = ["new", "assignment-approved", "rejected"][: 2 + int(rnd() < 0.5)]
            path[-1] = "rejected"
        span = (self.now - 60 - created) * (0.3 + 0.7 * rnd())
        gaps = [rnd() for _ in path]
        scale = span / sum(gaps)
        out: list[tuple[str, int, str]] = []
        t = float(created)
        for k, st in enumerate(path):
            if k:
                t += gaps[k] * scale
            out.append((st, int(t), _DN_BY_STATUS[st] or user_dn))
        return out

    def _agent_reports(self, rng: random.Random, truth: _Truth,
                       popular: tuple[str, ...]) -> None:
        """Add what each agent running the workflow reports, per task and site.

        :param popular: the sites the workflow may run at, most used first.
        """
        rnd = rng.random
        status = truth.status
        pool = _TEAM_AGENTS[truth.team]
        if status == "acquired":
            count = 1 if rnd() < 0.8 else 2
        else:
            count = _N_AGENTS(rnd)
        count = min(count, len(pool), self.max_agents)
        urls = rng.sample(pool, count)
        if status == "acquired":
            progress, phase = 0.0, _QUEUED
        elif status in ("running-open", "running-closed", "force-complete"):
            low, high = {"running-open": (0.02, 0.6), "running-closed": (0.3, 0.97),
                         "force-complete": (0.75, 0.99)}[status]
            progress, phase = low + (high - low) * rnd(), _RUNNING
        elif status in ("aborted", "aborted-completed"):
            progress, phase = rnd() * 0.8, _ABORTED
        else:
            progress, phase = 1.0, _DONE
        steps = truth.steps
        wf = truth.name
        # The task tree: (path, job type, step indices run by it, cost and outputs).
        tasks: list[tuple[str, str, tuple[int, ...], _TaskCost]] = []
        rtype = truth.request_type
        first_type = ("Harvesting" if rtype == "DQMHarvest" else
                      "Production" if steps[0].num_events else "Processing")
        no_cost: _TaskCost = (0, 0.0, ())
        merge_cost: _TaskCost = (steps[0].events_per_job * 20, 0.02, ())
        if truth.chain == "StepChain":
            head = f"/{wf}/{steps[0].name}"
            tasks.append((head, first_type, tuple(range(len(steps))),
                          _task_cost(steps, range(len(steps)))))
            kept = [(step.name, ds) for step in steps for ds in step.outputs]
            for step_name, ds in kept[-2:]:
                module = _MODULES[ds.rsplit("/", 1)[1]]
                tasks.append((f"{head}/{step_name}Merge{module}", "Merge", (), merge_cost))
        else:
            parent_path = f"/{wf}"
            for k, step in enumerate(steps):
                path = f"{parent_path}/{step.name}"
                tasks.append((path, first_type if k == 0 else "Processing", (k,),
                              _task_cost(steps, (k,))))
                merges = [f"{path}/{step.name}Merge{_MODULES[ds.rsplit('/', 1)[1]]}"
                          for ds in step.outputs[-1:]]
                for merge in merges:
                    tasks.append((merge, "Merge", (), merge_cost))
                if merges:
                    parent_path = merges[-1]  # the next task reads the last output
        head = tasks[0][0]
        tasks.append((f"{head}/LogCollect", "LogCollect", (), no_cost))
        if steps[0].outputs and rnd() < 0.2:
            module = _MODULES[steps[0].outputs[0].rsplit("/", 1)[1]]
            tasks.append((f"{head}/{steps[0].name}CleanupUnmerged{module}", "Cleanup", (),
                          no_cost))
        del tasks[self.max_tasks:]

        reach = max(1.0, progress * len(steps) * 1.3) if phase != _DONE else len(steps) + 1.0
        max_sites = min(self.max_sites, len(popular))
        merge_sites, small_sites = popular[:8], popular[:5]
        queued = phase == _QUEUED
        for url in urls:
            stamp = self.now - int(rnd() * (900 if phase != _DONE else 86400 * 3))
            reports: list[_TaskReport] = []
            in_wmbs = 0
            for path, job_type, runs, cost in tasks:
                sites: list[_SiteReport] = []
                if runs:  # a processing task
                    if (not queued or rnd() < 0.35) and runs[0] < reach:
                        # Exponential tails: most tasks at a few sites, some at dozens.
                        count = (1 + int(-1.5 * _log(1.0 - rnd())) if rnd() < 0.9 else
                                 3 + int(-7.0 * _log(1.0 - rnd())))
                        scale = 12.0 if job_type != "Harvesting" else 0.3
                        for site in _pick_sites(rnd, popular, min(count, max_sites)):
                            sites.append(_site_report(rnd, site, phase, progress, scale,
                                                      cost, job_type))
                elif job_type == "Merge":
                    if not queued and progress > 0.05 and rnd() < 0.7:
                        count = min(1 + int(rnd() * 1.6), max_sites)
                        for site in _pick_sites(rnd, merge_sites, count):
                            sites.append(_site_report(rnd, site, phase, progress, 2.0, cost,
                                                      job_type))
                elif not queued and progress > 0.25:  # LogCollect / Cleanup
                    site = small_sites[int(len(small_sites) * rnd() ** 1.6)]
                    sites.append(_site_report(rnd, site, phase, min(1.0, progress + 0.3), 0.1,
                                              cost, job_type))
                    if job_type == "LogCollect" and max_sites > 1 and rnd() < 0.1:
                        # Real agents report performance at a site with no job counters.
                        other = "T2_CH_CERN" if site != "T2_CH_CERN" else "T1_US_FNAL"
                        wrapped = float(10 + int(rnd() * 50))
                        sites.append(_SiteReport(other, {}, (0.0, 0.0, 0.0, 0, wrapped), ()))
                for report in sites:
                    in_wmbs += sum(report.counters.values())
                finished = 1 if (phase == _DONE or (sites and rnd() < progress * 0.3)) else 0
                skipped = (int(rnd() * 40) + 1 if sites and job_type == "Processing"
                           and rnd() < 0.05 else 0)
                reports.append(_TaskReport(path, job_type,
                                           (1 - finished, finished, 1, stamp - int(rnd() * 3600)),
                                           skipped, sites))
            top: dict[str, int] = {}
            if in_wmbs:
                top["InWMBS"] = in_wmbs
            if phase in (_QUEUED, _RUNNING) and (status != "running-closed" or rnd() < 0.2):
                top["InQueue"] = 1 + int(rnd() * 40)
            truth.agents.append(_AgentReport(url, f"{rng.getrandbits(128):032x}", stamp, top,
                                             reports))


@dataclass(slots=True)
class _AgentInfo:
    url: str
    team: str
    version: str
    status: str
    down: list[str]
    drain: bool
    disks: list[tuple[str, str, int]]  # filesystem, mount point, percent used
    timestamp: int
    data_last_update: int


_log: Final = math.log
_QUEUED: Final = 0
_RUNNING: Final = 1
_ABORTED: Final = 2
_DONE: Final = 3


def _lfn_base(dataset: str) -> str:
    _, primary, processed, tier = dataset.split("/")
    era, _, rest = processed.partition("-")
    return f"/store/unmerged/{era}/{primary}/{tier}/{rest}"


#: Cost of one task: events per job (0: no cmsRun), seconds per event, and
#: (dataset, events written per input event, bytes per event) of each output.
_TaskCost = tuple[int, float, tuple[tuple[str, float, int], ...]]


def _task_cost(steps: list[_Step], runs: Sequence[int]) -> _TaskCost:
    """The cost and outputs of a processing task that runs ``steps[k]`` for k in ``runs``."""
    first = steps[runs[0]]
    return (first.events_per_job, sum(steps[k].seconds_per_event for k in runs),
            tuple((ds, steps[k].filter_eff, _EVENT_SIZE[ds.rsplit("/", 1)[1]])
                  for k in runs for ds in steps[k].outputs))


def _pick_sites(rnd: Callable[[], float], popular: Sequence[str], count: int) -> list[str]:
    """``count`` distinct sites, favouring the front (most popular) of ``popular``."""
    n = len(popular)
    if count >= n:
        return list(popular)
    chosen: dict[str, None] = {}
    tries = 0
    while len(chosen) < count and tries < 4 * count:
        chosen[popular[int(n * rnd() ** 1.6)]] = None
        tries += 1
    return list(chosen)


def _site_report(rnd: Callable[[], float], site: str, phase: int, progress: float,
                 scale: float, cost: _TaskCost, job_type: str) -> _SiteReport:
    """Job counters, performance and output of one task at one site."""
    total = 1 + int(scale * -_log(1.0 - rnd()) * (1.0 + 4.0 * rnd() ** 3))
    c: dict[str, int] = {}
    if phase == _QUEUED:
        c["QueuedFirst"] = total
        if rnd() < 0.2:
            c["SubmittedPending"] = c["SubmittedFirst"] = 1 + int(rnd() * 5)
    else:
        done = total if phase == _DONE else int(total * min(1.0, max(
            0.0, progress + (rnd() - 0.5) * 0.4)))
        failed = int(done * rnd() ** 4 * 0.12)
        if done - failed:
            c["Success"] = done - failed
        if failed:
            c["FailureException"] = failed
        rest = total - done
        if phase == _ABORTED:
            if rest:
                c["Canceled"] = rest
        elif rest:
            running = int(rest * rnd())
            pending = int((rest - running) * rnd())
            cooloff = int((rest - running - pending) * rnd() * 0.4)
            queued = rest - running - pending - cooloff
            if running:
                c["SubmittedRunning"] = running
            if pending:
                c["SubmittedPending"] = pending
            retry = int((running + pending) * rnd() * 0.15)
            if retry:
                c["SubmittedRetry"] = retry
            if running + pending - retry:
                c["SubmittedFirst"] = running + pending - retry
            if cooloff:
                c["CooloffJob"] = cooloff
            queued_retry = int(queued * rnd() * 0.25)
            if queued_retry:
                c["QueuedRetry"] = queued_retry
            if queued - queued_retry:
                c["QueuedFirst"] = queued - queued_retry
        # Rare states, each a few jobs.
        u = rnd()
        if u < 0.12:
            rare = ("Transition", "PausedJob", "FailureCreate", "FailureSubmit",
                    "CooloffCreate", "CooloffSubmit", "PausedCreate", "PausedSubmit",
                    "Canceled", "Transition", "PausedJob", "CooloffSubmit")[int(u * 100)]
            if phase == _RUNNING or rare in ("FailureCreate", "FailureSubmit", "Canceled"):
                c[rare] = c.get(rare, 0) + 1 + int(rnd() * 4)
    success = c.get("Success", 0)
    perf: tuple[float, float, float, int, float] | None = None
    datasets: tuple[tuple[str, int, int, int], ...] | None = None
    if success:
        per_job, seconds, outputs = cost
        if not per_job:  # LogCollect, Cleanup: no cmsRun
            perf = (0.0, 0.0, 0.0, 0, float(success * (20 + int(rnd() * 200))))
            datasets = ()
        else:
            events = success * per_job
            wall = events * seconds * (0.8 + 0.4 * rnd())
            cpu = wall * (0.55 + 0.4 * rnd())
            perf = (round(cpu, 2), round(cpu / per_job, 4), round(wall, 2), events,
                    round(wall + success * (60 + 600 * rnd()), 2))
            datasets = tuple([
                (ds, int(events * eff), int(events * eff * size * (0.7 + 0.6 * rnd())),
                 int(events * eff) // 400 + 1) for ds, eff, size in outputs])
    return _SiteReport(site, c, perf, datasets)


# --------------------------------------------------------------------------- static rendering


def _render_bundle(t: _Truth) -> WorkflowBundle:
    """The static records of one workflow (mirrors what the converter must produce)."""
    name = t.name
    steps = t.steps
    totals: dict[str, int] = {}
    datasets: dict[str, list[int]] = {}
    site_names: set[str] = set()
    wf_sites: list[WorkflowSite] = []
    wf_tasks: list[WorkflowTask] = []
    task_sites: list[TaskSite] = []
    no_perf = (0.0, 0.0, 0.0, 0, 0.0)
    for agent in t.agents:
        url = agent.url
        per_site: dict[str, dict[str, int]] = {}
        for key, value in agent.top.items():
            totals[key] = totals.get(key, 0) + value
        for task in agent.tasks:
            path = task.path
            task_counts: dict[str, int] = {}
            for s in task.sites:
                site = s.site
                counters = s.counters
                site_names.add(site)
                if counters:
                    into_site = per_site.get(site)
                    if into_site is None:
                        into_site = per_site[site] = {}
                    for key, value in counters.items():
                        task_counts[key] = task_counts.get(key, 0) + value
                        into_site[key] = into_site.get(key, 0) + value
                cpu, event_cpu, wall, events, wrapped = s.perf or no_perf
                task_sites.append(TaskSite(
                    RequestName=name, Task=path, Site=site, Agent=url, TotalJobCPU=cpu,
                    TotalEventCPU=event_cpu, TotalJobTime=wall, InputEvents=events,
                    WrappedTotalJobTime=wrapped, **counters))
                if s.datasets:
                    for ds, written, size, lumis in s.datasets:
                        into = datasets.get(ds)
                        if into is None:
                            datasets[ds] = [written, size, lumis]
                        else:
                            into[0] += written
                            into[1] += size
                            into[2] += lumis
            for key, value in task_counts.items():
                totals[key] = totals.get(key, 0) + value
            opened, finished, total, updated = task.subscription
            wf_tasks.append(WorkflowTask(
                RequestName=name, Task=path, Agent=url, JobType=task.job_type,
                SubscriptionOpen=opened, SubscriptionFinished=finished,
                SubscriptionTotal=total, SubscriptionUpdated=updated,
                SkippedFiles=task.skipped, **task_counts))
        for site, counts in per_site.items():
            wf_sites.append(WorkflowSite(RequestName=name, Site=site, Agent=url, **counts))
    for ds in t.output_datasets:
        datasets.setdefault(ds, [0, 0, 0])

    if t.per_task_names:
        eras = [s.acq_era for s in steps]
        procs = [s.proc_string for s in steps]
    else:
        eras = [t.acq_era]
        procs = [t.proc_string]
    resolved = True if t.parentage_resolved is None else t.parentage_resolved
    workflow = Workflow(
        RequestName=name,
        RequestStatus=t.status,
        RequestType=t.request_type,
        SubRequestType=t.sub_type,
        Campaign=t.campaign,
        Campaigns=_dedup([t.campaign, *(s.campaign for s in steps if t.chain)]),
        Teams=(t.team,) if t.team else (),
        Group=t.group,
        Requestor=t.requestor,
        PrepID=t.prep_id,
        CMSSWVersion=t.cmssw,
        CMSSWVersions=_dedup([t.cmssw, *(s.cmssw for s in steps if t.chain)]),
        ScramArch=_dedup([t.arch, *(s.arch for s in steps if t.chain)]),
        AcquisitionEras=_dedup([*eras, *(s.acq_era for s in steps if t.chain)]),
        ProcessingStrings=_dedup([*procs, *(s.proc_string for s in steps if t.chain)]),
        RequestPriority=t.priority,
        RequestDate=t.date,
        StatusTime=t.transitions[-1][1],
        InputDataset=t.input_dataset,
        OutputDatasets=t.output_datasets,
        MCPileup=_dedup([t.mc_pileup, *(s.mc_pileup for s in steps if t.chain)]),
        DataPileup=(),
        SiteWhitelist=t.whitelist,
        SiteBlacklist=t.blacklist,
        OutputModulesLFNBases=t.lfn_bases,
        UnmergedLFNBase="/store/unmerged",
        ParentageResolved=resolved,
        ChainLength=len(steps) if t.chain else 0,
        TotalEstimatedJobs=t.total_jobs,
        TotalInputEvents=t.input_events,
        TotalInputLumis=t.input_lumis,
        TotalInputFiles=t.input_files,
        RequestNumEvents=t.num_events,
        Agents=tuple(sorted(a.url for a in t.agents)),
        Sites=tuple(sorted(site_names)),
        AgentUpdate=max((a.timestamp for a in t.agents), default=0),
        HasRequest=True,
        **totals,
    )
    wf_sites.sort(key=_SITE_ORDER)
    wf_tasks.sort(key=_TASK_ORDER)
    task_sites.sort(key=_TASK_SITE_ORDER)
    parentage = tuple(
        ChainParentage(RequestName=name, ChainKey=s.key, ParentDataset=s.parent or "",
                       ChildDatasets=s.outputs, ParentageResolved=resolved)
        for s in steps) if t.chain else ()
    return WorkflowBundle(
        workflow=workflow,
        sites=tuple(wf_sites),
        tasks=tuple(wf_tasks),
        task_sites=tuple(task_sites),
        datasets=tuple(DatasetStats(RequestName=name, Dataset=ds, Events=v[0], Size=v[1],
                                    Lumis=v[2]) for ds, v in sorted(datasets.items())),
        parentage=parentage,
        transitions=tuple(RequestTransition(RequestName=name, Index=k, Status=s, UpdateTime=u,
                                            DN=d) for k, (s, u, d) in enumerate(t.transitions)),
    )


_SITE_ORDER: Final = operator.attrgetter("Site", "Agent")
_TASK_ORDER: Final = operator.attrgetter("Task", "Agent")
_TASK_SITE_ORDER: Final = operator.attrgetter("Task", "Site", "Agent")


def _render_agent(info: _AgentInfo) -> Agent:
    return Agent(
        AgentURL=info.url, AgentTeam=info.team, AgentVersion=info.version,
        Status=info.status, DownComponents=tuple(info.down), DrainMode=info.drain,
        DiskWarning=tuple(mount for _, mount, _ in info.disks), Timestamp=info.timestamp,
        DataLastUpdate=info.data_last_update,
    )


# --------------------------------------------------------------------------- dynamic rendering


def _nest(counts: dict[str, int]) -> dict[str, Any]:
    """Counter fields in WMCore's nested shape; zeros left out like real agents do."""
    out: dict[str, Any] = {}
    for field, value in counts.items():
        if not value:
            continue
        outer, inner = _NEST[field]
        if inner is None:
            out[outer] = value
        else:
            sub = out.get(outer)
            if sub is None:
                out[outer] = {inner: value}
            else:
                sub[inner] = value
    return out


def _render_request(t: _Truth) -> dict[str, Any]:
    """The ReqMgr2 request document of one workflow."""
    steps = t.steps
    first = steps[0]
    name = t.name
    doc: dict[str, Any] = dict(_REQUEST_CONSTANTS)
    doc.update({
        "_id": name,
        "RequestName": name,
        "RequestString": name.split("_", 1)[1].rsplit("_", 3)[0],
        "RequestStatus": t.status,
        "RequestType": t.request_type,
        "SubRequestType": t.sub_type,
        "Campaign": t.campaign,
        "Group": t.group,
        "Requestor": t.requestor,
        "RequestorDN": t.requestor_dn,
        "DN": t.requestor_dn,
        "PrepID": t.prep_id,
        "CMSSWVersion": t.cmssw,
        "ScramArch": [t.arch],
        "GlobalTag": t.global_tag,
        "RequestPriority": t.priority,
        "InitialPriority": t.initial_priority,
        "PriorityTransition": [{"Priority": t.initial_priority, "DN": t.requestor_dn,
                                "UpdateTime": t.date}],
        "RequestDate": list(time.gmtime(t.date)[:6]),
        "RequestTransition": [{"Status": s, "UpdateTime": u, "DN": d}
                              for s, u, d in t.transitions],
        "OutputDatasets": list(t.output_datasets),
        "OutputModulesLFNBases": list(t.lfn_bases),
        "MergedLFNBase": t.merged_lfn,
        "SiteWhitelist": list(t.whitelist),
        "SiteBlacklist": list(t.blacklist),
        "TotalEstimatedJobs": t.total_jobs,
        "TotalInputEvents": t.input_events,
        "TotalInputLumis": t.input_lumis,
        "TotalInputFiles": t.input_files,
        "PrimaryDataset": t.primary_dataset,
        "ProcessingVersion": t.processing_version,
        "TimePerEvent": t.time_per_event,
        "SizePerEvent": t.size_per_event,
        "Memory": t.memory,
        "Multicore": t.cores,
        "ConfigCacheID": None if t.chain else first.config_id or None,
        "RequestWorkflow": ("https://cmsweb.cern.ch/couchdb/reqmgr_workload_cache/"
                            f"{name}/spec"),
        "CustodialSites": [],
        "NonCustodialSites": [],
        "AutoApproveSubscriptionSites": [],
        "DQMSequences": [],
        "LumiList": {},
        "Override": {"eos-lfn-prefix": "root://eoscms.cern.ch//eos/cms/store/logs/prod/recent/"
                                       "PRODUCTION"},
        "Comments": {"WorkFlowDesc": [f"{t.request_type} for {t.prep_id}"],
                     "CheckList": [], "Label": []},
    })
    if t.team:
        doc["Team"] = t.team
    if t.input_dataset:
        doc["InputDataset"] = t.input_dataset
    if t.mc_pileup:
        doc["MCPileup"] = t.mc_pileup
    if t.num_events and not t.chain:
        doc["RequestNumEvents"] = t.num_events
    if t.original_request:
        doc["OriginalRequestName"] = t.original_request
        doc["InitialTaskPath"] = f"/{t.original_request}/{first.name}"
        doc["ACDCServer"] = "https://cmsweb.cern.ch/couchdb"
        doc["ACDCDatabase"] = "acdcserver"
    if t.per_task_names:
        doc["AcquisitionEra"] = {s.name: s.acq_era for s in steps}
        doc["ProcessingString"] = {s.name: s.proc_string for s in steps}
    else:
        doc["AcquisitionEra"] = t.acq_era
        doc["ProcessingString"] = t.proc_string
    if t.parentage_resolved is not None:
        doc["ParentageResolved"] = t.parentage_resolved
    if t.chain:
        is_task = t.chain == "TaskChain"
        doc[t.chain] = len(steps)
        parentage: dict[str, Any] = {}
        for s in steps:
            sub: dict[str, Any] = {
                "TaskName" if is_task else "StepName": s.name,
                "Campaign": s.campaign,
                "AcquisitionEra": s.acq_era,
                "ProcessingString": s.proc_string,
                "PrepID": s.prep_id,
                "GlobalTag": s.global_tag,
                "ConfigCacheID": s.config_id,
                "KeepOutput": s.keep_output,
                "Memory": s.memory,
                "Multicore": s.cores,
                "TimePerEvent": s.seconds_per_event,
                "SplittingAlgo": "EventBased" if s.num_events else "EventAwareLumiBased",
                "EventsPerJob": s.events_per_job,
            }
            if s.cmssw:
                sub["CMSSWVersion"] = s.cmssw
            if s.arch:
                sub["ScramArch"] = [s.arch]
            if s.mc_pileup:
                sub["MCPileup"] = s.mc_pileup
            if s.num_events:
                sub["RequestNumEvents"] = s.num_events
                sub["FilterEfficiency"] = s.filter_eff
                sub["Seeding"] = "AutomaticSeeding"
                sub["PrimaryDataset"] = t.primary_dataset
            if s.input_ref:
                sub["InputTask" if is_task else "InputStep"] = s.input_ref
                sub["InputFromOutputModule"] = s.input_module
            elif t.input_dataset:
                sub["InputDataset"] = t.input_dataset
            doc[s.key] = sub
            parentage[s.key] = {"ParentDset": s.parent, "ChildDsets": list(s.outputs)}
        doc["ChainParentageMap"] = parentage
    return doc


def _render_agent_request(t: _Truth, agent: _AgentReport) -> dict[str, Any]:
    """One agent's ``agent_request`` document for one workflow."""
    team, version = AGENTS[agent.url]
    status: dict[str, int] = dict(agent.top)
    sites: dict[str, dict[str, int]] = {}
    tasks: dict[str, Any] = {}
    for task in agent.tasks:
        task_counts: dict[str, int] = {}
        task_sites: dict[str, Any] = {}
        for s in task.sites:
            counts = s.counters
            for key, value in counts.items():
                task_counts[key] = task_counts.get(key, 0) + value
            if counts:
                into = sites.get(s.site)
                if into is None:
                    sites[s.site] = dict(counts)
                else:
                    for key, value in counts.items():
                        into[key] = into.get(key, 0) + value
            entry = _nest(counts)
            if s.perf is not None:
                cpu, event_cpu, wall, events, wrapped = s.perf
                entry["cmsRunCPUPerformance"] = {"totalJobCPU": cpu, "totalEventCPU": event_cpu,
                                                 "totalJobTime": wall}
                entry["inputEvents"] = events
                entry["wrappedTotalJobTime"] = wrapped
            if s.datasets is not None:
                entry["dataset"] = {ds: {"events": ev, "size": size, "totalLumis": lumis}
                                    for ds, ev, size, lumis in s.datasets}
            task_sites[s.site] = entry
        for key, value in task_counts.items():
            status[key] = status.get(key, 0) + value
        opened, finished, total, updated = task.subscription
        task_doc: dict[str, Any] = {
            "jobtype": task.job_type,
            "subscription_status": {"finished": finished, "open": opened, "total": total,
                                    "updated": updated},
        }
        if task_sites:
            task_doc["sites"] = task_sites
        nested = _nest(task_counts)
        if nested:
            task_doc["status"] = nested
        if task.skipped:
            task_doc["skipped"] = {"skippedFiles": task.skipped}
        tasks[task.path] = task_doc
    return {
        "_id": agent.doc_id,
        "agent": "WMAgent",
        "agent_team": team,
        "agent_url": agent.url,
        "agent_version": version,
        "sites": {site: _nest(counts) for site, counts in sites.items()},
        "status": _nest(status),
        "tasks": tasks,
        "timestamp": agent.timestamp,
        "type": "agent_request",
        "workflow": t.name,
    }


def _render_agent_info(info: _AgentInfo) -> dict[str, Any]:
    """One agent's ``agent_info`` heartbeat document."""
    return {
        "_id": info.url,
        "type": "agent_info",
        "agent": "WMAgent",
        "agent_url": info.url,
        "agent_team": info.team,
        "agent_version": info.version,
        "status": info.status,
        "down_components": list(info.down),
        "down_component_detail": [
            {"name": c, "worker_name": f"{c}Poller", "state": "down",
             "last_error": info.timestamp - 300, "error_message": f"{c} is not running"}
            for c in info.down],
        "drain_mode": info.drain,
        "disk_warning": [
            {"filesystem": fs, "size": "1.5T", "used": f"{round(15 * pct / 1000, 1)}T",
             "available": f"{round(15 * (100 - pct) / 1000, 1)}T", "percent": f"{pct}%",
             "mounted": mount}
            for fs, mount, pct in info.disks],
        "couch_process_warning": 0,
        "acdc": "https://cmsweb.cern.ch/couchdb/acdcserver/_design/ACDC/collections.html",
        "timestamp": info.timestamp,
        "data_last_update": info.data_last_update,
        "data_error": "ok",
    }
