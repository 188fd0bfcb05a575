import type {
  BecomeMember,
  BecomeMemberReply,
  GroupJoin,
  GroupJoinReply,
  GroupList,
  MyMaster,
  SystemConfig,
} from "../api/host.js";
import { baseUrl } from "./address.js";
import { requestJson } from "./http.js";

/** Typed client of an agent's host API (seed 000). */
export class HostClient {
  readonly url: string;
  constructor(
    address: string,
    private readonly token?: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.url = baseUrl(address);
  }

  private get<T>(path: string): Promise<T> {
    return requestJson<T>(this.url + path, { token: this.token, timeoutMs: this.timeoutMs });
  }

  private post<T>(path: string, body: unknown, token = this.token): Promise<T> {
    return requestJson<T>(this.url + path, { method: "POST", token, body, timeoutMs: this.timeoutMs });
  }

  config(): Promise<SystemConfig> {
    return this.get("/common/config");
  }

  groupList(): Promise<GroupList> {
    return this.get("/master/group/list");
  }

  myMaster(): Promise<MyMaster> {
    return this.get("/slave/group/my/master");
  }

  /** Member → master: record me. Authenticated by the group's join token. */
  recordJoin(body: GroupJoin, joinToken: string): Promise<GroupJoinReply> {
    return this.post("/master/group/join", body, joinToken);
  }

  /** Operator → own agent: become a member of that master's group. */
  becomeMember(body: BecomeMember): Promise<BecomeMemberReply> {
    return this.post("/slave/group/join", body);
  }
}
