/** What `edgeward system status` shows of one service; every service reports itself in this shape. */
export interface ServiceStatus {
  name: string;
  status: 'running' | 'ready' | 'degraded' | 'down';
  detail: string;
}
