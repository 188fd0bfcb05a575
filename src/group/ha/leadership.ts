/**
 * Which master leads the group: the one holding etcd's election key (etcd3's Election, a key bound
 * to a lease this master keeps alive). A master that dies stops renewing; etcd deletes its key when
 * the lease's TTL runs out and the next campaigner is elected. The leader's value is its own address,
 * so the others know where to forward writes.
 */
import { Etcd3, type Campaign, type ElectionObserver } from "etcd3";
import type { Logger } from "../../lib/logger.js";

export interface LeadershipEvents {
  /** This master now leads; `key` is its election key (writes are fenced on it). */
  elected: (key: string) => Promise<void> | void;
  /** This master no longer leads (its lease ended or etcd could not be reached). */
  deposed: (why: Error) => void;
  /** Another master leads now, at `address` (undefined while none does). */
  leader: (address: string | undefined) => void;
}

export class Leadership {
  private campaign: Campaign | undefined;
  private observer: ElectionObserver | undefined;
  private leadKey: string | undefined;
  private stopped = false;

  constructor(
    private readonly etcd: Etcd3,
    private readonly opts: { name: string; ttlSeconds: number; address: string; log: Logger; events: LeadershipEvents },
  ) {}

  /** The election key while this master leads. */
  get key(): string | undefined {
    return this.leadKey;
  }

  get leading(): boolean {
    return this.leadKey !== undefined;
  }

  async start(): Promise<void> {
    const election = this.etcd.election(this.opts.name, this.opts.ttlSeconds);
    await this.observe(election);
    this.stand(election);
  }

  /**
   * Follows who leads. etcd3's observer stops for good at its first error (a read refused or failed
   * while the lead changes hands), so a failed one is replaced: else this master would name a
   * leader long gone, and pass calls to it, for ever.
   */
  private async observe(election: ReturnType<Etcd3["election"]>): Promise<void> {
    const observer = await election.observe();
    if (this.stopped) return void (await observer.cancel().catch(() => undefined));
    this.observer = observer;
    observer.on("change", (address) => this.opts.events.leader(address));
    observer.on("error", (e) => {
      this.opts.log.warn({ err: e.message }, "group leader: cannot observe the election; observing it again");
      if (this.observer === observer) this.observeAgain(election, 1_000);
    });
    this.opts.events.leader(observer.leader());
  }

  private observeAgain(election: ReturnType<Etcd3["election"]>, afterMs: number): void {
    setTimeout(() => {
      if (this.stopped) return;
      this.observe(election).catch((e: Error) => {
        this.opts.log.warn({ err: e.message }, "group leader: cannot observe the election; retrying");
        this.observeAgain(election, 2_000);
      });
    }, afterMs).unref();
  }

  private stand(election: ReturnType<Etcd3["election"]>): void {
    if (this.stopped) return;
    const campaign = election.campaign(this.opts.address);
    this.campaign = campaign;
    campaign.on("elected", () => {
      void campaign.getCampaignKey().then(async (key) => {
        if (this.campaign !== campaign) return;
        this.leadKey = key;
        this.opts.log.info({ address: this.opts.address }, "group leader: this master leads");
        await this.opts.events.elected(key);
      }).catch((e: Error) => this.lose(campaign, election, e));
    });
    campaign.on("error", (e: Error) => this.lose(campaign, election, e));
  }

  /** The lease is gone (or etcd unreachable): this master stops leading and campaigns again. */
  private lose(campaign: Campaign, election: ReturnType<Etcd3["election"]>, why: Error): void {
    if (this.campaign !== campaign) return;
    this.campaign = undefined;
    const wasLeading = this.leadKey !== undefined;
    this.leadKey = undefined;
    this.opts.log.warn({ err: why.message, wasLeading }, "group leader: campaign ended; standing again");
    if (wasLeading) this.opts.events.deposed(why);
    campaign.resign().catch(() => undefined);
    setTimeout(() => this.stand(election), 500).unref();
  }

  /** Resigns (another master is elected at once) and stops campaigning. */
  async stop(): Promise<void> {
    this.stopped = true;
    const campaign = this.campaign;
    this.campaign = undefined;
    this.leadKey = undefined;
    await campaign?.resign().catch(() => undefined);
    await this.observer?.cancel().catch(() => undefined);
  }
}
