"""The mock's vocabulary: sites, agents, campaigns, statuses, request types, chains
and the weights they are drawn with (:class:`Choice`).

Pure data; :mod:`wmstats.mock._truth` draws from it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from wmstats.schema import COUNTER_SOURCES

__all__ = [
    "ACTIVE_STATUSES", "AGENTS", "ARCHIVED_STATUSES", "DATA_PILEUP", "AGENT_COUNT_CHOICE", "AGENT_STATUS_CHOICE", "CAMPAIGNS",
    "CHAIN_LENGTH_CHOICE", "COMPONENTS", "Choice", "DATA_CAMPAIGNS", "DATA_PDS", "DEFAULT_NOW",
    "DISKS", "DN_BY_STATUS", "DN_UNIFIED", "DN_USER", "EVENT_SIZE", "GROUP_CHOICE", "HLT_SITES",
    "MC_CHAIN_CHOICE", "MC_GENERATORS", "MC_PROCESSES", "MODULES", "NAME_MULT", "NAME_SPACE",
    "NEST", "PAGS", "PRIORITY_CHOICE", "RELVAL_LABELS", "RELVAL_RELEASES", "RELVAL_SAMPLES",
    "RELVAL_STEPS", "REQUEST_CONSTANTS", "REQUEST_STATUSES", "REQUEST_TYPES", "SITES",
    "SITE_INDEX", "SITE_INV_WEIGHT", "SITE_LISTS", "STATUS_CHOICE", "STATUS_PATH",
    "TEAM_AGENTS", "TEAM_CHOICE", "TYPE_CHOICE"
]

T = TypeVar("T")

#: The mock's "now" (epoch seconds, 2024-06-10 06:13:20 UTC): every date is before it.
DEFAULT_NOW: Final = 1_718_000_000
_WINDOW: Final = 180 * 86400  # requests were created during the 180 days before "now"
NAME_SPACE: Final = _WINDOW * 10_000  # (creation second, 4-digit suffix) pairs
NAME_MULT: Final = 2_654_435_761  # a prime, so i -> (a*i + b) mod NAME_SPACE is a bijection

# --------------------------------------------------------------------------- vocabulary


class Choice(Generic[T]):
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
SITE_INV_WEIGHT: Final = tuple(1.0 / _site_weight(s) for s in SITES)
SITE_INDEX: Final = range(len(SITES))
SITE_LISTS: Final = 256  # distinct site whitelists per generator
HLT_SITES: Final = ("T2_CH_CERN_HLT", "T2_CH_CERN")

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
TEAM_AGENTS: Final[dict[str, tuple[str, ...]]] = {
    team: tuple(url for url, (t, _) in AGENTS.items() if t == team)
    for team in ("production", "relval", "hlt")
}
TEAM_CHOICE: Final = Choice([("production", 88.0), ("relval", 10.0), ("hlt", 2.0)])
AGENT_COUNT_CHOICE: Final = Choice([(1, 60.0), (2, 28.0), (3, 12.0)])

#: ReqMgr2 statuses and their weight among the requests WMStats shows.
REQUEST_STATUSES: Final[Mapping[str, float]] = MappingProxyType({
    "new": 2.0, "assignment-approved": 4.0, "assigned": 5.0, "staging": 2.0,
    "staged": 1.0, "acquired": 10.0, "running-open": 22.0, "running-closed": 24.0,
    "force-complete": 1.5, "completed": 15.0, "closed-out": 6.0, "announced": 2.0,
    "aborted": 1.0, "aborted-completed": 1.5, "failed": 1.0, "rejected": 1.0,
})
STATUS_CHOICE: Final = Choice(list(REQUEST_STATUSES.items()))
#: Statuses whose workflows have jobs reported by agents.
ACTIVE_STATUSES: Final = frozenset({
    "acquired", "running-open", "running-closed", "force-complete", "completed",
    "closed-out", "announced", "aborted", "aborted-completed",
})
#: Final statuses and the archived status a share of their requests has moved on to
#: (ReqMgr2 keeps archived requests; WMStats does not show them): base -> (archived
#: status, share).
ARCHIVED_STATUSES: Final[Mapping[str, tuple[str, float]]] = MappingProxyType({
    "announced": ("normal-archived", 0.35), "rejected": ("rejected-archived", 0.5),
    "aborted-completed": ("aborted-archived", 0.5),
})
#: Data pileup (real collision events overlaid on simulation) that some pileup steps
#: read as well as, or instead of, their MC premix (``DataPileup``).
DATA_PILEUP: Final = ("/ZeroBias/Run2018D-v1/RAW", "/MinimumBias/Run2018D-v1/RAW",
                      "/HIMinimumBias/HIRun2023A-v1/RAW")
STATUS_PATH: Final = ("new", "assignment-approved", "assigned", "staging", "staged", "acquired",
                "running-open", "running-closed", "completed", "closed-out", "announced")

#: Request types and their weight (production team; relval requests are TaskChains).
REQUEST_TYPES: Final[Mapping[str, float]] = MappingProxyType({
    "TaskChain": 34.0, "StepChain": 30.0, "ReReco": 8.0, "Resubmission": 10.0,
    "MonteCarlo": 4.0, "ReDigi": 4.0, "DQMHarvest": 5.0, "MonteCarloFromGEN": 2.0,
})
TYPE_CHOICE: Final = Choice(list(REQUEST_TYPES.items()))
CHAIN_LENGTH_CHOICE: Final = Choice([(2, 30.0), (3, 28.0), (4, 20.0), (5, 10.0), (6, 6.0),
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
MC_CHAIN_CHOICE: Final = Choice([(c, 6.0 if c[0].campaign.startswith("RunIISummer20") else 5.0)
                            for c in _MC_CHAINS])

RELVAL_RELEASES: Final = (
    ("CMSSW_14_0_0", "el8_amd64_gcc12", "140X_mcRun3_2024_realistic_v3"),
    ("CMSSW_14_0_6", "el8_amd64_gcc12", "140X_mcRun3_2024_realistic_v8"),
    ("CMSSW_14_1_0_pre3", "el8_amd64_gcc12", "140X_mcRun3_2024_realistic_v10"),
    ("CMSSW_13_3_0_pre5", "el8_amd64_gcc12", "133X_mcRun3_2023_realistic_v3"),
)
RELVAL_LABELS: Final = ("fullsim_noPU_2024_14TeV", "fullsim_PU_2024_14TeV",
                         "fullsim_noPU_2023_14TeV")
RELVAL_SAMPLES: Final = ("TTbar_14TeV", "ZEE_14", "ZMM_14", "SingleMuPt10",
                          "QCD_FlatPt_15_3000HS_14", "H125GGgluonfusion_14", "MinBias_14TeV",
                          "ZpTT_1500_14", "NuGun", "SingleElectronPt35")
RELVAL_STEPS: Final = (
    ("GenSimFull", ("GEN-SIM",), 60.0, True),
    ("Digi", ("GEN-SIM-DIGI-RAW",), 20.0, False),
    ("Reco", ("GEN-SIM-RECO", "AODSIM", "MINIAODSIM"), 25.0, False),
    ("Nano", ("NANOAODSIM",), 0.4, False),
    ("HARVEST", ("DQMIO",), 0.1, False),
)

#: (campaign, eras, release, arch, global tag, processing string, input tier, output tiers)
DATA_CAMPAIGNS: Final[tuple[tuple[str, tuple[str, ...], str, str, str, str, str,
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
DATA_PDS: Final = ("JetMET0", "JetMET1", "Muon0", "Muon1", "EGamma0", "EGamma1", "Tau",
                    "BTagMu", "DisplacedJet", "ZeroBias", "MuonEG", "HLTPhysics", "NoBPTX",
                    "ParkingDoubleMuonLowMass0", "Commissioning", "JetHT", "SingleMuon",
                    "DoubleMuon", "MET")

MC_PROCESSES: Final = (
    "DYJetsToLL_M-50", "DYto2L-2Jets_MLL-50", "TTTo2L2Nu", "TTtoLNu2Q", "TTToHadronic",
    "WJetsToLNu", "WtoLNu-4Jets", "QCD_PT-15to7000_Flat", "QCD_HT1000to1500",
    "GluGluHToBB_M-125", "GluGluHToGG_M-125", "VBFHToTauTau_M125", "ZprimeToTT_M3000_W30",
    "BulkGravitonToHH_M-1000", "ST_tW_top_5f_inclusiveDecays", "WWTo2L2Nu", "WZTo3LNu",
    "ZZTo4L", "TTZToLLNuNu_M-10", "TTWJetsToLNu", "HToSSTo4B_MH-125_MS-40_ctauS-100",
    "SMS-T1tttt_mGluino-2000_mLSP-100", "BsToMuMu_SoftQCDnonD", "JPsiToMuMu_PT-0to100",
    "MinBias", "Neutrino_E-10_gun", "VectorZPrimeToQQ_M-200", "ChargedHiggs_HplusTB_M-500",
    "EtaTo2Mu2E", "LQToBMu_M-1500",
)
MC_GENERATORS: Final = ("madgraphMLM-pythia8", "amcatnloFXFX-pythia8", "powheg-pythia8",
                         "pythia8", "madgraph-pythia8", "JHUGen-pythia8", "evtgen-pythia8")
PAGS: Final = ("HIG", "B2G", "EXO", "SUS", "TOP", "SMP", "BPH", "TSG", "BTV", "JME", "EGM",
                "MUO", "TAU", "HIN", "GEN", "PPS", "MLG", "BPH", "HIG", "EXO")
GROUP_CHOICE: Final = Choice([("PPD", 80.0), ("DATAOPS", 12.0), ("RelVal", 4.0), ("HIG", 2.0),
                         ("B2G", 2.0)])
PRIORITY_CHOICE: Final = Choice([(63000, 10.0), (80000, 15.0), (85000, 25.0), (90000, 20.0),
                            (110000, 15.0), (130000, 8.0), (200000, 4.0), (300000, 3.0)])

DN_USER: Final = ("/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=pdmvserv/CN={n}/"
                   "CN=Robot: PdmV Service")
DN_UNIFIED: Final = ("/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=cmsunified/CN=766218/"
                      "CN=Robot: CMS Unified")
_DN_MS: Final = "/DC=ch/DC=cern/OU=computers/CN=tier0/vocms0750.cern.ch"
_DN_WQ: Final = "/DC=ch/DC=cern/OU=computers/CN=wmagent/vocms0192.cern.ch"
DN_BY_STATUS: Final = {
    "new": "", "assignment-approved": "", "rejected": "",
    "assigned": DN_UNIFIED, "force-complete": DN_UNIFIED, "aborted": DN_UNIFIED,
    "closed-out": DN_UNIFIED, "announced": DN_UNIFIED,
    "staging": _DN_MS, "staged": _DN_MS, "failed": _DN_WQ, "acquired": _DN_WQ,
    "running-open": _DN_WQ, "running-closed": _DN_WQ, "completed": _DN_WQ,
    "aborted-completed": _DN_WQ,
    # ReqMgr2's own clean-up thread archives requests.
    "normal-archived": _DN_MS, "rejected-archived": _DN_MS, "aborted-archived": _DN_MS,
}

#: Output module name of each data tier.
MODULES: Final = {
    "LHE": "LHEoutput", "GEN": "RAWSIMoutput", "GEN-SIM": "RAWSIMoutput",
    "GEN-SIM-DIGI": "PREMIXRAWoutput", "GEN-SIM-RAW": "RAWSIMoutput",
    "GEN-SIM-DIGI-RAW": "FEVTDEBUGHLToutput", "GEN-SIM-DIGI-RAW-MINIAOD": "PREMIXRAWoutput",
    "GEN-SIM-RECO": "RECOSIMoutput", "AODSIM": "AODSIMoutput",
    "MINIAODSIM": "MINIAODSIMoutput", "NANOAODSIM": "NANOAODSIMoutput", "AOD": "AODoutput",
    "MINIAOD": "MINIAODoutput", "NANOAOD": "NANOAODoutput", "DQMIO": "DQMoutput",
}
#: Bytes per event of each data tier (before jitter).
EVENT_SIZE: Final = {
    "LHE": 4_000, "GEN": 60_000, "GEN-SIM": 900_000, "GEN-SIM-DIGI": 1_800_000,
    "GEN-SIM-RAW": 2_400_000, "GEN-SIM-DIGI-RAW": 3_000_000,
    "GEN-SIM-DIGI-RAW-MINIAOD": 3_200_000, "GEN-SIM-RECO": 1_500_000, "AODSIM": 420_000,
    "MINIAODSIM": 45_000, "NANOAODSIM": 1_800, "AOD": 350_000, "MINIAOD": 40_000,
    "NANOAOD": 1_500, "DQMIO": 300,
}

#: Every campaign the generator uses.
CAMPAIGNS: Final[tuple[str, ...]] = tuple(dict.fromkeys(
    [s.campaign for chain in _MC_CHAINS for s in chain]
    + [c[0] for c in DATA_CAMPAIGNS]
    + [f"{r[0]}__{label}" for r in RELVAL_RELEASES for label in RELVAL_LABELS]
))

COMPONENTS: Final = ("JobSubmitter", "JobAccountant", "ErrorHandler", "DBS3Upload",
                      "JobTracker", "WorkQueueManager", "RetryManager", "JobArchiver",
                      "TaskArchiver", "JobStatusLite", "JobCreator", "RucioInjector",
                      "ArchiveDataReporter", "AgentStatusWatcher", "CouchServer")
DISKS: Final = (("/dev/vdb", "/data"), ("/dev/vda1", "/"), ("/dev/vdc", "/data1"),
                 ("tmpfs", "/tmp"))
AGENT_STATUS_CHOICE: Final = Choice([("ok", 70.0), ("warning", 15.0), ("error", 10.0),
                                ("down", 5.0)])

# Nested WMCore path of each counter: "SubmittedRunning" -> ("submitted", "running").
NEST: Final[dict[str, tuple[str, str | None]]] = {
    field: (path.split(".")[0], path.split(".")[1] if "." in path else None)
    for field, path in COUNTER_SOURCES.items()
}

# Constant request keys real documents carry that no consumer of the schema reads.
REQUEST_CONSTANTS: Final[dict[str, Any]] = {
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

